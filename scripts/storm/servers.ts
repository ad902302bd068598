// The servers a storm is run against, each started fresh in the server namespace:
//   bootserve      node bin/bootserve.js DIR --pxe --host 198.18.0.2 --port 80 (plus --bootserve-arg)
//   dnsmasq        proxy-DHCP + its TFTP as the manual's PXE example has it (tftp-max at its default, 50),
//                  beside nginx with Debian's shipped settings (worker_processes auto, 768 connections
//                  per worker, sendfile, access log on)
//   dnsmasq-tuned  the same with tftp-max 1024
// and their CPU time and memory, sampled from /proc while the storm runs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_IP, type Lan } from './lan.js';

export type ServerKind = 'bootserve' | 'dnsmasq' | 'dnsmasq-tuned';
export const SERVER_KINDS: readonly ServerKind[] = ['bootserve', 'dnsmasq', 'dnsmasq-tuned'];

const BIN = fileURLToPath(new URL('../../bin/bootserve.js', import.meta.url));

export interface Running {
  kind: ServerKind;
  pids(): number[];
  stop(): Promise<void>;
  logs: string[];
}

function startLogged(lan: Lan, args: string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  const argv = [...lan.exec('server'), ...args];
  // `ip netns exec` execs the command: the child's pid is the server's.
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

async function waitUntil(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether UDP 67, 69, 4011 and TCP 80 are all bound in the server namespace. */
function listening(lan: Lan, dhcp: boolean): boolean {
  const udp =
    spawnSync(lan.exec('server')[0] as string, [...lan.exec('server').slice(1), 'ss', '-Hlnu'], { encoding: 'utf8', timeout: 5000 })
      .stdout ?? '';
  const tcp =
    spawnSync(lan.exec('server')[0] as string, [...lan.exec('server').slice(1), 'ss', '-Hlnt'], { encoding: 'utf8', timeout: 5000 })
      .stdout ?? '';
  const ports = (text: string) => new Set([...text.matchAll(/:(\d+)\s/g)].map((m) => Number(m[1])));
  const u = ports(udp);
  return (!dhcp || (u.has(67) && u.has(4011))) && u.has(69) && ports(tcp).has(80);
}

function stopChild(child: ChildProcess, ms = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startServer(
  kind: ServerKind,
  lan: Lan,
  dir: string,
  data: string,
  extra: string[],
  nodeArgs: string[] = [],
): Promise<Running> {
  if (kind === 'bootserve') {
    const log = join(dir, 'bootserve.log');
    const child = startLogged(lan, [process.execPath, ...nodeArgs, BIN, data, '--pxe', '--host', SERVER_IP, '--port', '80', ...extra], log);
    await waitUntil(() => child.exitCode === null && listening(lan, true), 15_000, `bootserve to listen (see ${log}: ${tail(log)})`);
    return { kind, pids: () => [child.pid as number], stop: () => stopChild(child), logs: [log] };
  }
  const conf = join(dir, `${kind}.conf`);
  writeFileSync(
    conf,
    [
      'port=0',
      'log-facility=' + join(dir, `${kind}.log`),
      `pid-file=${join(dir, `${kind}.pid`)}`,
      `dhcp-range=${SERVER_IP},proxy,255.255.0.0`,
      'dhcp-match=set:ipxe,175',
      'pxe-service=tag:!ipxe,x86PC,"Network boot",undionly.kpxe',
      'pxe-service=tag:!ipxe,X86-64_EFI,"Network boot",snponly.efi',
      `dhcp-boot=tag:ipxe,http://${SERVER_IP}/boot.ipxe`,
      'enable-tftp',
      `tftp-root=${data}`,
      ...(kind === 'dnsmasq-tuned' ? ['tftp-max=1024'] : []),
      '',
    ].join('\n'),
  );
  const nginxConf = join(dir, 'nginx.conf');
  writeFileSync(
    nginxConf,
    [
      'user www-data;',
      'worker_processes auto;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'nginx-error.log')};`,
      'events { worker_connections 768; }',
      'http {',
      '  sendfile on;',
      '  tcp_nopush on;',
      '  types_hash_max_size 2048;',
      '  default_type application/octet-stream;',
      `  access_log ${join(dir, 'nginx-access.log')};`,
      `  server { listen ${SERVER_IP}:80; root ${data}; }`,
      '}',
      '',
    ].join('\n'),
  );
  const dnsmasq = startLogged(lan, ['dnsmasq', '--keep-in-foreground', `--conf-file=${conf}`], join(dir, `${kind}.out`));
  const nginx = startLogged(lan, ['nginx', '-p', dir, '-c', nginxConf, '-g', 'daemon off;'], join(dir, 'nginx.out'));
  await waitUntil(
    () => dnsmasq.exitCode === null && nginx.exitCode === null && listening(lan, true),
    15_000,
    `dnsmasq and nginx to listen (${tail(join(dir, `${kind}.out`))} ${tail(join(dir, 'nginx.out'))})`,
  );
  const pids = () => {
    const all = (spawnSync('ip', ['netns', 'pids', lan.server], { encoding: 'utf8', timeout: 5000 }).stdout ?? '')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    return all;
  };
  return {
    kind,
    pids,
    stop: async () => void (await Promise.all([stopChild(dnsmasq), stopChild(nginx)])),
    logs: [join(dir, `${kind}.log`), join(dir, 'nginx-error.log')],
  };
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-400);
  } catch {
    return '';
  }
}

/** CPU time (ms) and resident memory (KiB) of a process, from /proc; undefined once it is gone. */
function sample(pid: number): { cpuMs: number; rssKb: number; hwmKb: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return { cpuMs: ticks * 10, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

export interface Usage {
  cpuMs: number;
  /** The largest sum of RSS over the server's processes seen while sampling (and each one's high-water mark). */
  peakRssKb: number;
}

/** Samples the server's processes every 200 ms until stop(). */
export function watchUsage(server: Running): { stop(): Usage } {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let peak = 0;
  const pids = server.pids();
  const tick = () => {
    let sum = 0;
    let hwm = 0;
    for (const pid of pids) {
      const s = sample(pid);
      if (!s) continue;
      if (!first.has(pid)) first.set(pid, s.cpuMs);
      last.set(pid, s.cpuMs);
      sum += s.rssKb;
      hwm += s.hwmKb;
    }
    // One process: its high-water mark is exact. Several: the largest sum seen.
    peak = Math.max(peak, sum, pids.length === 1 ? hwm : 0);
  };
  tick();
  const timer = setInterval(tick, 200);
  return {
    stop: () => {
      tick();
      clearInterval(timer);
      let cpu = 0;
      for (const [pid, end] of last) cpu += end - (first.get(pid) ?? end);
      return { cpuMs: cpu, peakRssKb: peak };
    },
  };
}
