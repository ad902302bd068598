// Boot-storm simulator (a benchmark, not a test): N machines powered on within a few seconds on a
// virtual LAN, each following its firmware's timers, against bootserve and dnsmasq + nginx in
// the same run. See docs/storm.md.
//   node --import tsx scripts/storm.ts --machines 500            (root: it creates namespaces)
//   node --import tsx scripts/storm.ts --help
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLan, machineIp, SERVER_IP, sweepStale, type Lan } from './storm/lan.js';
import type { Firmware, MachinePlan, MachineResult } from './storm/machine.js';
import { summarize, table, type RunSummary } from './storm/report.js';
import { SERVER_KINDS, startServer, watchUsage, type Running, type ServerKind } from './storm/servers.js';
import type { WorkerPlan } from './storm/worker.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAX_MACHINES = 4000;

interface Options {
  machines: number;
  kernelSize: number;
  initrdSize: number;
  servers: ServerKind[];
  mix: [number, number, number];
  windowMs: number;
  timeoutS: number;
  workers: number;
  seed: number;
  bootserveArgs: string[];
  serverRmem: number | undefined;
  json: string | undefined;
  keep: boolean;
  ipxeDir: string;
  probe: boolean;
}

const HELP = `Usage: node --import tsx scripts/storm.ts [options]   (as root)

  --machines N         simulated machines (default 100, at most ${MAX_MACHINES})
  --mix U/B/I          percent edk2 UEFI PXE / BIOS PXE ROM / already iPXE (default 70/20/10)
  --window DURATION    all machines power on within this (default 2s)
  --kernel-size SIZE   default 8M        --initrd-size SIZE   default 32M
  --servers LIST       of ${SERVER_KINDS.join(', ')} (default: all three, in that order)
  --timeout SECONDS    a run ends this long after its start; unbooted machines fail (default 240)
  --workers N          simulator processes (default 2)
  --seed N             firmware mix and power-on times (default 1)
  --bootserve-arg ARG  one more argument for bootserve (repeatable), e.g. --bootserve-arg=--tftp-max-transfers=1024
  --server-rmem BYTES  net.core.rmem_default/max inside the server's namespace (default: the kernel's)
  --ipxe-dir DIR       where snponly.efi and undionly.kpxe come from (default /usr/lib/ipxe)
  --json FILE          write every summary as JSON
  --keep               keep the work folder (logs, configs)
  --probe              load scripts/storm/probe.mjs into bootserve: event-loop delay and thread-pool
                       wait once a second in its log (implies --keep)`;

function parseSize(text: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text);
  if (!m) throw new Error(`bad size '${text}'`);
  return Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] as string).toUpperCase()] as number);
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    machines: 100,
    kernelSize: 8 << 20,
    initrdSize: 32 << 20,
    servers: [...SERVER_KINDS],
    mix: [70, 20, 10],
    windowMs: 2000,
    timeoutS: 240,
    workers: 2,
    seed: 1,
    bootserveArgs: [],
    serverRmem: undefined,
    json: undefined,
    keep: false,
    ipxeDir: '/usr/lib/ipxe',
    probe: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] as string).split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--machines':
        o.machines = Number(value());
        break;
      case '--mix':
        o.mix = value().split('/').map(Number) as [number, number, number];
        break;
      case '--window':
        o.windowMs = /ms$/.test(inline ?? argv[i + 1] ?? '') ? parseInt(value(), 10) : parseFloat(value()) * 1000;
        break;
      case '--kernel-size':
        o.kernelSize = parseSize(value());
        break;
      case '--initrd-size':
        o.initrdSize = parseSize(value());
        break;
      case '--servers':
        o.servers = value().split(',') as ServerKind[];
        break;
      case '--timeout':
        o.timeoutS = Number(value());
        break;
      case '--workers':
        o.workers = Number(value());
        break;
      case '--seed':
        o.seed = Number(value());
        break;
      case '--bootserve-arg':
        o.bootserveArgs.push(value());
        break;
      case '--server-rmem':
        o.serverRmem = parseSize(value());
        break;
      case '--ipxe-dir':
        o.ipxeDir = value();
        break;
      case '--json':
        o.json = value();
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--probe':
        o.probe = true;
        o.keep = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(HELP + '\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  if (!(Number.isInteger(o.machines) && o.machines >= 1 && o.machines <= MAX_MACHINES)) throw new Error(`--machines: 1 to ${MAX_MACHINES}`);
  if (o.mix.length !== 3 || o.mix.some((n) => !(n >= 0)) || o.mix.reduce((a, b) => a + b, 0) !== 100)
    throw new Error('--mix: three percentages adding up to 100');
  if (!(o.windowMs >= 0 && o.windowMs <= 60_000)) throw new Error('--window: 0 to 60 s');
  if (!(o.timeoutS >= 10 && o.timeoutS <= 1800)) throw new Error('--timeout: 10 to 1800 s');
  if (!(o.workers >= 1 && o.workers <= 8)) throw new Error('--workers: 1 to 8');
  for (const s of o.servers) if (!SERVER_KINDS.includes(s)) throw new Error(`--servers: unknown ${s}`);
  return o;
}

/** A small seeded generator (mulberry32): the same seed, the same storm for every server. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function planMachines(o: Options): MachinePlan[] {
  const rand = random(o.seed);
  const counts = [Math.round((o.machines * o.mix[0]) / 100), Math.round((o.machines * o.mix[1]) / 100)];
  const kinds: Firmware[] = [];
  for (let i = 0; i < o.machines; i++)
    kinds.push(i < (counts[0] as number) ? 'uefi' : i < (counts[0] as number) + (counts[1] as number) ? 'bios' : 'ipxe');
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as Firmware, kinds[i] as Firmware];
  }
  return kinds.map((firmware, id) => ({
    id,
    firmware,
    ip: machineIp(id),
    mac: ['52', '54', ...[24, 16, 8, 0].map((shift) => ((id >> shift) & 0xff).toString(16).padStart(2, '0'))].join(':'),
    powerOnMs: Math.floor(rand() * o.windowMs),
  }));
}

/** The served folder: random kernel and initrd, the script, and the iPXE binaries. */
function makeData(o: Options, data: string): Map<string, { sha256: string; size: number }> {
  mkdirSync(data, { recursive: true });
  const files = new Map<string, { sha256: string; size: number }>();
  const put = (name: string, bytes: Buffer) => {
    writeFileSync(join(data, name), bytes);
    chmodSync(join(data, name), 0o644);
    files.set(name, { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });
  };
  put('vmlinuz', randomBytes(o.kernelSize));
  put('initrd.img', randomBytes(o.initrdSize));
  put(
    'boot.ipxe',
    Buffer.from(`#!ipxe\nkernel http://${SERVER_IP}/vmlinuz initrd=initrd.img\ninitrd http://${SERVER_IP}/initrd.img\nboot\n`),
  );
  for (const name of ['snponly.efi', 'undionly.kpxe']) {
    copyFileSync(join(o.ipxeDir, name), join(data, name));
    put(name, readFileSync(join(data, name)));
  }
  return files;
}

/** bootserve's /-/metrics at the end of its run. */
function bootserveMetrics(lan: Lan): string {
  const script = `fetch('http://${SERVER_IP}/-/metrics', { signal: AbortSignal.timeout(5000) }).then((r) => r.text())` +
  `.then((t) => process.stdout.write(t), (e) => process.stdout.write('# ' + e.message))`;
  return (
    spawnSync(lan.exec('server')[0] as string, [...lan.exec('server').slice(1), process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 10_000,
    }).stdout ?? ''
  );
}

interface Cleanup {
  children: Set<ChildProcess>;
  server: Running | undefined;
  lan: Lan | undefined;
  dir: string | undefined;
  keep: boolean;
}

const cleanup: Cleanup = { children: new Set(), server: undefined, lan: undefined, dir: undefined, keep: false };

async function tidy(): Promise<void> {
  for (const c of cleanup.children) c.kill('SIGKILL');
  await cleanup.server?.stop().catch(() => {});
  cleanup.lan?.close();
  if (cleanup.dir && !cleanup.keep) rmSync(cleanup.dir, { recursive: true, force: true });
  else if (cleanup.dir) process.stderr.write(`storm: work folder kept: ${cleanup.dir}\n`);
}

async function runOne(
  o: Options,
  kind: ServerKind,
  lan: Lan,
  dir: string,
  data: string,
  files: Map<string, { sha256: string; size: number }>,
  plans: MachinePlan[],
): Promise<RunSummary> {
  lan.flushNeighbours();
  const nodeArgs = o.probe ? ['--import', join(ROOT, 'scripts/storm/probe.mjs')] : [];
  const server = await startServer(kind, lan, dir, data, o.bootserveArgs, nodeArgs);
  cleanup.server = server;
  const drops0 = { server: lan.udpDrops('server'), clients: lan.udpDrops('clients') };
  // Workers need a moment to load: the storm starts for all of them at the same instant.
  const startAt = Date.now() + 3000;
  const results: MachineResult[] = [];
  let clientCpuMs = 0;
  let clientLoop = { p99Ms: 0, maxMs: 0 };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < o.workers; w++) {
    const plan: WorkerPlan = {
      server: SERVER_IP,
      httpPort: 80,
      startAt,
      deadlineMs: o.timeoutS * 1000,
      files: [...files],
      machines: plans.filter((_, i) => i % o.workers === w),
    };
    const planFile = join(dir, `plan-${kind}-${w}.json`);
    writeFileSync(planFile, JSON.stringify(plan));
    const argv = [...lan.exec('clients'), process.execPath, '--import', 'tsx', join(ROOT, 'scripts/storm/worker.ts'), planFile];
    const child = spawn(argv[0] as string, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.children.add(child);
    let partial = '';
    let errors = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        const record = JSON.parse(line) as MachineResult | { worker: true; cpuMs: number; loop: { p99Ms: number; maxMs: number } };
        if ('worker' in record) {
          clientCpuMs += record.cpuMs;
          clientLoop = { p99Ms: Math.max(clientLoop.p99Ms, record.loop.p99Ms), maxMs: Math.max(clientLoop.maxMs, record.loop.maxMs) };
        }
        else {
          results.push(record);
          if (results.length % Math.max(1, Math.floor(o.machines / 10)) === 0)
            process.stderr.write(`  ${kind}: ${results.length}/${o.machines} ended (${((Date.now() - startAt) / 1000).toFixed(0)} s)\n`);
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (errors += d));
    workers.push(
      new Promise<void>((resolve, reject) => {
        // Bounded: the workers end by the deadline; a worker still there 30 s later is killed.
        const guard = setTimeout(() => child.kill('SIGKILL'), startAt - Date.now() + o.timeoutS * 1000 + 30_000);
        child.on('exit', (code) => {
          clearTimeout(guard);
          cleanup.children.delete(child);
          if (code === 0) resolve();
          else reject(new Error(`storm worker exited ${code}: ${errors.slice(-2000)}`));
        });
      }),
    );
  }
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
  const usage = watchUsage(server);
  await Promise.all(workers);
  const used = usage.stop();
  const wallS = (Date.now() - startAt) / 1000;
  const serverMetrics = kind === 'bootserve' ? bootserveMetrics(lan) : '';
  await server.stop();
  cleanup.server = undefined;
  return summarize(kind, results, {
    serverCpuS: used.cpuMs / 1000,
    peakRssMb: used.peakRssKb / 1024,
    clientCpuS: clientCpuMs / 1000,
    udpDrops: { server: lan.udpDrops('server') - drops0.server, clients: lan.udpDrops('clients') - drops0.clients },
    wallS,
    clientLoop,
    serverCounters: serverMetrics
      .split('\n')
      .filter(
        (l) =>
          /^bootserve_(dhcp_ignored|tftp_refused|tftp_paced|tftp_ignored|rejected|tftp_retrans|.*queue|.*wait)/.test(l) && !/ 0$/.test(l),
      ),
    serverMetrics,
  });
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('run as root: the storm creates network namespaces');
  for (const tool of ['ip', 'ss', ...(o.servers.some((s) => s !== 'bootserve') ? ['dnsmasq', 'nginx'] : [])]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      throw new Error(`${tool} not found (apt-get install iproute2 dnsmasq-base nginx-light)`);
  }
  if (o.servers.includes('bootserve') && !existsSync(join(ROOT, 'dist/main.js'))) throw new Error('bootserve is not built: npm run build');
  const stale = sweepStale();
  if (stale.length) process.stderr.write(`storm: removed namespaces left by an earlier run: ${stale.join(' ')}\n`);
  cleanup.keep = o.keep;
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-storm-'));
  cleanup.dir = dir;
  chmodSync(dir, 0o755); // nginx's workers and dnsmasq run as other users
  const data = join(dir, 'data');
  const files = makeData(o, data);
  chmodSync(data, 0o755);
  const plans = planMachines(o);
  const lan = createLan({ machines: o.machines, serverRmem: o.serverRmem });
  cleanup.lan = lan;
  const load = readFileSync('/proc/loadavg', 'utf8').trim();
  process.stderr.write(
    `storm: ${o.machines} machines (${o.mix.join('/')} UEFI/BIOS/iPXE) within ${o.windowMs / 1000} s, ` +
    `${o.kernelSize >> 20} MiB kernel + ${o.initrdSize >> 20} MiB initrd; ` +
    `load ${load}\n`,
  );
  const runs: RunSummary[] = [];
  for (const kind of o.servers) {
    process.stderr.write(`storm: ${kind}\n`);
    runs.push(await runOne(o, kind, lan, dir, data, files, plans));
  }
  process.stdout.write(
    `\n${o.machines} machines, ${o.mix.join('/')} UEFI/BIOS/iPXE, ` +
    `powered on within ${o.windowMs / 1000} s, ${o.kernelSize >> 20} MiB + ${o.initrdSize >> 20} MiB; load before: ${load}\n\n`,
  );
  process.stdout.write(table(runs) + '\n');
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, load, runs }, null, 2));
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`storm: ${signal}, cleaning up\n`);
    void tidy().then(() => process.exit(130));
  });
}

main().then(
  () => tidy().then(() => process.exit(0)),
  (err: unknown) => {
    process.stderr.write(`storm: ${err instanceof Error ? err.message : String(err)}\n`);
    void tidy().then(() => process.exit(1));
  },
);
