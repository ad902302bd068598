// bootserve benchmark: bootserve against nginx (sendfile on/off), a naive Node server, `serve`
// and `http-server`, with node:http's own ceiling (node-hello) for small requests, on loopback,
// interleaved (round by round, every server in turn), one table of medians at the end.
// TypeScript run by tsx, Node built-ins only; the load generators are curl and wrk.
// Usage: scripts/bench [--quick] [options]   (scripts/bench --help; scripts/README.md)
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnSyncOptions } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

// ---------------------------------------------------------------- options

const HELP = `Usage: scripts/bench [options]

Builds bootserve, starts it and the baselines on 127.0.0.1, runs every workload against every
server in turn for several rounds, and prints one table of medians with bootserve's ratio to
each baseline. Every option can also be given as an environment variable BENCH_<NAME>
(e.g. BENCH_ROUNDS=5, BENCH_BIG=2G); flags win.

  --quick                 smoke test: small files, 1 round, short wrk run
  --rounds N              rounds per workload and server (default 3)
  --big SIZE              workload 1 file (default 1G)
  --clients N             workload 2 concurrent clients (default 64)
  --medium SIZE           workload 2 file (default 64M)
  --wrk-connections N     workload 3 keep-alive connections (default 500)
  --wrk-duration SECS     workload 3 duration per run (default 10)
  --wrk-threads N         workload 3 wrk threads (default: number of cores)
  --iso SIZE              workload 4 ISO (default 1G)
  --range-clients N       workload 4 clients (default 4)
  --range-size SIZE       workload 4 bytes per request (default 64K)
  --range-reads N         workload 4 requests per client (default: ISO / range size / clients,
                          so the clients together read one ISO's worth)
  --startup-samples N     start-up and idle RSS samples per server (default 7)
  --servers LIST          comma list of: bootserve,nginx-sendfile,nginx-nosendfile,naive,node-hello,
                          serve,http-server
  --workloads LIST        comma list of 1,2,3,4 (default all)
  --repo DIR              bootserve checkout to build and run (default: this script's repo)
  --candidate DIR         also run a second bootserve checkout (built too), as 'candidate',
                          interleaved with the others: for A/B-testing a change
  --data DIR              where the test files live (default $TMPDIR/bootserve-bench-data)
  --peers DIR             npm prefix for serve and http-server (default /tmp/bootserve-bench-peers)
  --no-build              do not run npm run build
  --no-install            do not apt-get/npm install missing tools (skip what is missing)
  --json FILE             also write the raw results as JSON
  --cpu-prof DIR          run the Node servers (bootserve, the candidate, naive-node, node-hello)
                          under node --cpu-prof, one profile per run in DIR named
                          SERVER-W<n>-r<round>.cpuprofile (CPU figures include the profiler's
                          cost); summarise with scripts/cpuprofile-top.ts
  -h, --help              this help
SIZE: bytes, or with K, M, G (binary).`;

const SIZE_UNITS: Record<string, number> = { '': 1, K: KiB, M: MiB, G: GiB };
function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid size '${text}'`);
  return Math.round(Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toUpperCase()] ?? NaN));
}
const parseCount = (t: string): number => {
  if (!/^\d+$/.test(t) || Number(t) < 1) throw new Error(`invalid count '${t}'`);
  return Number(t);
};

/** How each option is read: a flag, a number parser, or a string (paths made absolute). */
type OptionKind = 'flag' | 'string' | ((text: string) => number);
const SPEC: Record<string, OptionKind> = {
  quick: 'flag', rounds: parseCount, big: parseSize, clients: parseCount, medium: parseSize,
  'wrk-connections': parseCount, 'wrk-duration': parseCount, 'wrk-threads': parseCount,
  iso: parseSize, 'range-clients': parseCount, 'range-size': parseSize, 'range-reads': parseCount,
  'startup-samples': parseCount, servers: 'string', workloads: 'string', repo: 'string', data: 'string',
  peers: 'string', candidate: 'string', 'no-build': 'flag', 'no-install': 'flag', json: 'string', 'cpu-prof': 'string',
  help: 'flag',
};

interface Options {
  quick: boolean;
  rounds: number;
  big: number;
  clients: number;
  medium: number;
  wrkConnections: number;
  wrkDuration: number;
  wrkThreads: number;
  iso: number;
  rangeClients: number;
  rangeSize: number;
  rangeReads: number;
  startupSamples: number;
  servers: string[] | undefined;
  workloads: Workload[];
  repo: string;
  candidate: string | undefined;
  data: string;
  peers: string;
  build: boolean;
  install: boolean;
  json: string | undefined;
  cpuProf: string | undefined;
  help: boolean;
}
type Workload = 1 | 2 | 3 | 4;
const isWorkload = (n: number): n is Workload => n >= 1 && n <= 4;
/** The options that are numbers, by their camelCase name. */
type NumericOption = { [K in keyof Options]: Options[K] extends number ? K : never }[keyof Options];
const NUMERIC = new Set<string>([
  'rounds', 'big', 'clients', 'medium', 'wrkConnections', 'wrkDuration', 'wrkThreads', 'iso', 'rangeClients', 'rangeSize',
  'rangeReads', 'startupSamples',
] satisfies NumericOption[]);

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const raw: Record<string, string | boolean> = {};
  for (const name of Object.keys(SPEC)) {
    const v = env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
    if (v !== undefined && v !== '') raw[name] = SPEC[name] === 'flag' ? !['0', 'false', 'no', ''].includes(v.toLowerCase()) : v;
  }
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i] ?? '';
    if (a === '-h') a = '--help';
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}' (see --help)`);
    const [name = '', inline] = a.slice(2).split(/=(.*)/s);
    if (!(name in SPEC)) throw new Error(`unknown option '${a}' (see --help)`);
    if (SPEC[name] === 'flag') raw[name] = true;
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      raw[name] = v;
    }
  }
  const quick = raw.quick === true;
  const o: Options = {
    quick,
    rounds: quick ? 1 : 3,
    big: quick ? 64 * MiB : GiB,
    clients: 64,
    medium: quick ? 4 * MiB : 64 * MiB,
    wrkConnections: 500,
    wrkDuration: quick ? 2 : 10,
    wrkThreads: Math.max(1, cpus().length),
    iso: quick ? 64 * MiB : GiB,
    rangeClients: 4,
    rangeSize: 64 * KiB,
    rangeReads: 0, // 0: one ISO's worth, worked out below
    startupSamples: quick ? 3 : 7,
    servers: undefined,
    workloads: [1, 2, 3, 4],
    repo: resolve(dirname(fileURLToPath(import.meta.url)), '..'),
    candidate: undefined,
    data: join(tmpdir(), 'bootserve-bench-data'),
    peers: '/tmp/bootserve-bench-peers',
    build: true,
    install: true,
    json: undefined,
    cpuProf: undefined,
    help: raw.help === true,
  };
  const camel = (n: string): string => n.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
  for (const [name, v] of Object.entries(raw)) {
    const kind = SPEC[name];
    if (typeof v !== 'string' || kind === 'flag' || kind === undefined || name === 'servers' || name === 'workloads') continue;
    if (kind !== 'string') {
      if (NUMERIC.has(camel(name))) o[camel(name) as NumericOption] = kind(v);
    } else if (name === 'repo') o.repo = resolve(v);
    else if (name === 'data') o.data = resolve(v);
    else if (name === 'peers') o.peers = resolve(v);
    else if (name === 'json') o.json = resolve(v);
    else if (name === 'candidate') o.candidate = resolve(v);
    else if (name === 'cpu-prof') o.cpuProf = resolve(v);
  }
  if (raw['no-build']) o.build = false;
  if (raw['no-install']) o.install = false;
  if (typeof raw.servers === 'string') o.servers = raw.servers.split(',').map((s) => s.trim()).filter(Boolean);
  if (typeof raw.workloads === 'string') o.workloads = raw.workloads.split(',').map((s) => parseCount(s.trim())).filter(isWorkload);
  if (o.rangeSize > o.iso) throw new Error('--range-size is larger than --iso');
  if (o.rangeReads === 0) o.rangeReads = Math.max(1, Math.floor(o.iso / o.rangeSize / o.rangeClients));
  return o;
}

// ---------------------------------------------------------------- small helpers

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmtSize = (n: number): string =>
  n % GiB === 0 ? `${n / GiB} GiB` : n % MiB === 0 ? `${n / MiB} MiB` : n % KiB === 0 ? `${n / KiB} KiB` : `${n} B`;
function fmtNum(x: number, digits?: number): string {
  if (!Number.isFinite(x)) return '-';
  if (digits !== undefined) return x.toFixed(digits);
  const a = Math.abs(x);
  return a >= 1000 ? Math.round(x).toString() : a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { ok: boolean; out: string; status: number | null } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000, ...opts });
  return { ok: r.status === 0, out: String(r.stdout ?? '') + String(r.stderr ?? ''), status: r.status };
}

/** A free TCP port on 127.0.0.1 (listen on 0, read, close). */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}

/** Resolve true once 127.0.0.1:port accepts a connection; false after timeoutMs. */
async function waitForPort(port: number, timeoutMs = 10_000, isAlive = (): boolean => true): Promise<boolean> {
  const deadline = now() + timeoutMs;
  for (let attempt = 0; attempt < 100_000 && now() < deadline; attempt++) {
    const ok = await new Promise<boolean>((res) => {
      const sock = connect({ port, host: '127.0.0.1' });
      const t = setTimeout(() => {
        sock.destroy();
        res(false);
      }, 500);
      sock.once('connect', () => {
        clearTimeout(t);
        sock.destroy();
        res(true);
      });
      sock.once('error', () => {
        clearTimeout(t);
        res(false);
      });
    });
    if (ok) return true;
    if (!isAlive()) return false;
    await sleep(1);
  }
  return false;
}

// ---------------------------------------------------------------- /proc

const CLK_TCK = Number(run('getconf', ['CLK_TCK']).out.trim()) || 100;

/** utime+stime (seconds) of one process, and its parent pid; undefined if it is gone. */
function procStat(pid: number): { ppid: number; cpu: number; childCpu: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, childCpu: (Number(f[13]) + Number(f[14])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM in bytes. */
interface Mem {
  rss: number;
  hwm: number;
}
function procMem(pid: number): Mem {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** pid and every descendant (nginx: master + workers). */
function processTree(root: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (!st) continue;
    const list = byParent.get(st.ppid) ?? [];
    list.push(Number(name));
    byParent.set(st.ppid, list);
  }
  const out: number[] = [];
  const stack = [root];
  for (let p = stack.pop(); p !== undefined && out.length < 1000; p = stack.pop()) {
    out.push(p);
    stack.push(...(byParent.get(p) ?? []));
  }
  return out;
}

/** CPU seconds of a server: every process of the tree, plus what its reaped children used. */
function treeCpu(pids: number[]): number {
  let cpu = 0;
  for (const p of pids) {
    const st = procStat(p);
    if (st) cpu += st.cpu + st.childCpu;
  }
  return cpu;
}
const treeMem = (pids: number[]): Mem =>
  pids.map(procMem).reduce((a, m) => ({ rss: a.rss + m.rss, hwm: a.hwm + m.hwm }), { rss: 0, hwm: 0 });

// ---------------------------------------------------------------- setup

interface Tools {
  installed: string[];
  nginx: string | undefined;
  wrk: string | undefined;
  curl: string | undefined;
  servePath: string | undefined;
  httpServerPath: string | undefined;
  versions: Record<'node' | 'nginx' | 'wrk' | 'curl' | 'serve' | 'http-server', string>;
}

function ensureTools(o: Options): Tools {
  const missing: string[] = [];
  const installed: string[] = [];
  if (!which('curl')) missing.push('curl');
  if (!which('nginx') && !existsSync('/usr/sbin/nginx')) missing.push('nginx-light');
  if (!which('wrk')) missing.push('wrk');
  if (missing.length && o.install) {
    log(`installing from Debian's packages: ${missing.join(' ')}`);
    const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
    const cmd = [...sudo, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', ...missing];
    const [first = 'env', ...rest] = cmd;
    let r = run(first, rest);
    if (!r.ok) {
      log('apt-get install failed; trying apt-get update first');
      run(sudo[0] ?? 'apt-get', sudo.length ? [...sudo.slice(1), 'apt-get', 'update', '-q'] : ['update', '-q']);
      r = run(first, rest);
    }
    if (!r.ok) log(`apt-get install failed:\n${r.out.slice(-2000)}`);
    else installed.push(...missing.map((m) => `${m} (apt-get)`));
  }
  const peersBin = (pkg: string, rel: string): string => join(o.peers, 'node_modules', pkg, rel);
  const servePath = peersBin('serve', 'build/main.js');
  const httpServerPath = peersBin('http-server', 'bin/http-server');
  if ((!existsSync(servePath) || !existsSync(httpServerPath)) && o.install) {
    log(`installing serve and http-server from npm into ${o.peers} (not into the project)`);
    mkdirSync(o.peers, { recursive: true });
    const npmArgs = ['install', '--prefix', o.peers, '--no-audit', '--no-fund', '--no-save', 'serve', 'http-server'];
    const r = run('npm', npmArgs, { cwd: o.peers });
    if (!r.ok) log(`npm install failed:\n${r.out.slice(-2000)}`);
    else installed.push(`serve, http-server (npm, ${o.peers})`);
  }
  const nginx = which('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
  const version = (cmd: string, args: string[], re: RegExp): string => re.exec(run(cmd, args).out)?.[1] ?? '?';
  const packageVersion = (pkg: string): string =>
    (JSON.parse(readFileSync(peersBin(pkg, 'package.json'), 'utf8')) as { version: string }).version;
  return {
    installed,
    nginx,
    wrk: which('wrk'),
    curl: which('curl'),
    servePath: existsSync(servePath) ? servePath : undefined,
    httpServerPath: existsSync(httpServerPath) ? httpServerPath : undefined,
    versions: {
      node: process.version,
      nginx: nginx ? version(nginx, ['-v'], /nginx\/(\S+)/) : 'missing',
      wrk: which('wrk') ? version('wrk', ['-v'], /wrk (\S+)/) : 'missing',
      curl: version('curl', ['--version'], /curl (\S+)/),
      serve: existsSync(servePath) ? packageVersion('serve') : 'missing',
      'http-server': existsSync(httpServerPath) ? packageVersion('http-server') : 'missing',
    },
  };
}

/** Random-byte files, generated once and reused while their size matches. */
interface Files {
  big: string;
  medium: string;
  iso: string;
  script: string;
}
function ensureData(o: Options): Files {
  const dir = o.data;
  mkdirSync(dir, { recursive: true });
  const files: Files = {
    big: `big-${o.big}.bin`,
    medium: `medium-${o.medium}.bin`,
    iso: `disk-${o.iso}.iso`,
    script: 'boot.ipxe',
  };
  const make = (name: string, size: number): void => {
    const path = join(dir, name);
    try {
      if (statSync(path).size === size) return;
    } catch {}
    log(`generating ${name} (${fmtSize(size)} of random bytes)`);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o644);
    const buf = Buffer.alloc(Math.min(size, 16 * MiB));
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      left -= n;
    }
    closeSync(fd);
    renameSync(tmp, path);
  };
  make(files.big, o.big);
  make(files.medium, o.medium);
  make(files.iso, o.iso);
  // A 1 KiB iPXE script.
  let script = '#!ipxe\n# bootserve benchmark script\ndhcp\n'
    + 'kernel http://${next-server}/vmlinuz initrd=initrd.img console=ttyS0\ninitrd http://${next-server}/initrd.img\n';
  while (script.length < 1024 - 20) script += '# padding to 1 KiB\n';
  script = script.padEnd(1023, '#') + '\n';
  const sp = join(dir, files.script);
  if (!existsSync(sp) || readFileSync(sp, 'utf8') !== script) writeFileSync(sp, script, { mode: 0o644 });
  // Make sure the page cache holds them all, so every server reads from memory.
  for (const f of Object.values(files)) run('cat', [join(dir, f)], { stdio: ['ignore', 'ignore', 'ignore'] });
  return files;
}

const HELLO_SERVER = `// node:http's own ceiling: the same 1 KiB script from memory, whatever the URL.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
const [script, port] = process.argv.slice(2);
const body = readFileSync(script);
createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
}).listen(Number(port), '127.0.0.1');
// Exit, not die, on SIGTERM: node --cpu-prof writes its profile only on a normal exit.
process.on('SIGTERM', () => process.exit(0));
`;

const NAIVE_SERVER = `// The floor: createReadStream(path).pipe(res), default options, nothing else.
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
const [root, port] = process.argv.slice(2);
createServer((req, res) => {
  const path = join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  createReadStream(path).on('error', () => { res.statusCode = 404; res.end(); }).pipe(res);
}).listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0)); // for node --cpu-prof, as above
`;

function nginxConfig(prefix: string, root: string, port: number, sendfile: boolean): string {
  return `# bootserve bench: nginx as a non-daemon with its own prefix
worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 8192; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  sendfile ${sendfile ? 'on' : 'off'};
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { }
  }
}
`;
}

/** A server: how to start it on a port (tag: which run, for a profile's name; none for start-up samples). */
interface ServerDef {
  name: string;
  /** Whether it answers Range requests (workload 4). */
  ranges: boolean;
  /** nginx: its CPU and memory are those of the master and its workers. */
  nginx?: boolean;
  /** A baseline for these workloads only. */
  only?: Workload[];
  env?: NodeJS.ProcessEnv;
  cmd: (port: number, tag?: string) => [string, string[]];
}

/** The servers: how to start each on a port. */
function serverDefs(o: Options, tools: Tools, work: string): ServerDef[] {
  const node = process.execPath;
  const dir = o.data;
  const bootserveArgs = (port: number): string[] =>
    ['--host', '127.0.0.1', '--port', String(port), '--quiet', '--max-connections', '100000', '--max-connections-per-ip', '100000'];
  // Profiles only for measured runs (tag set), not for the start-up samples.
  const prof = (name: string, tag: string | undefined): string[] =>
    o.cpuProf && tag ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', `${name}-${tag}.cpuprofile`] : [];
  const defs: ServerDef[] = [
    {
      name: 'bootserve',
      ranges: true,
      cmd: (port, tag) => [node, [...prof('bootserve', tag), join(o.repo, 'bin/bootserve.js'), dir, ...bootserveArgs(port)]],
    },
  ];
  const candidate = o.candidate;
  if (candidate) {
    defs.push({
      name: 'candidate',
      ranges: true,
      cmd: (port, tag) => [node, [...prof('candidate', tag), join(candidate, 'bin/bootserve.js'), dir, ...bootserveArgs(port)]],
    });
  }
  const nginx = tools.nginx;
  if (nginx) {
    for (const sendfile of [true, false]) {
      const name = sendfile ? 'nginx-sendfile' : 'nginx-nosendfile';
      defs.push({
        name,
        ranges: true,
        nginx: true,
        cmd: (port) => {
          const prefix = join(work, name);
          mkdirSync(prefix, { recursive: true });
          writeFileSync(join(prefix, 'nginx.conf'), nginxConfig(prefix, dir, port, sendfile));
          return [nginx, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log'), '-g', 'daemon off;']];
        },
      });
    }
  }
  const naivePath = join(work, 'naive-server.mjs');
  writeFileSync(naivePath, NAIVE_SERVER);
  defs.push({ name: 'naive-node', ranges: false, cmd: (port, tag) => [node, [...prof('naive-node', tag), naivePath, dir, String(port)]] });
  const helloPath = join(work, 'hello-server.mjs');
  writeFileSync(helloPath, HELLO_SERVER);
  defs.push({
    name: 'node-hello',
    ranges: false,
    only: [3],
    cmd: (port, tag) => [node, [...prof('node-hello', tag), helloPath, join(dir, 'boot.ipxe'), String(port)]],
  });
  const { servePath, httpServerPath } = tools;
  if (servePath) {
    defs.push({
      name: 'serve',
      ranges: true,
      env: { NO_UPDATE_CHECK: '1' },
      cmd: (port) => [node, [servePath, '-L', '-n', '--no-port-switching', '-l', `tcp://127.0.0.1:${port}`, dir]],
    });
  }
  if (httpServerPath) {
    defs.push({
      name: 'http-server',
      ranges: true,
      cmd: (port) => [node, [httpServerPath, dir, '-a', '127.0.0.1', '-p', String(port), '-s']],
    });
  }
  const alias: Record<string, string> = { naive: 'naive-node', hello: 'node-hello' };
  if (o.servers) {
    const want = new Set(o.servers.map((s) => alias[s] ?? s));
    for (const w of want) if (!defs.some((d) => d.name === w)) log(`warning: server '${w}' unknown or unavailable, skipped`);
    return defs.filter((d) => want.has(d.name));
  }
  return defs;
}

// ---------------------------------------------------------------- server lifecycle

const live = new Set<ChildProcess>(); // child processes to kill on exit

interface Running {
  def: ServerDef;
  port: number;
  child: ChildProcess;
  startupMs: number;
  pids: () => number[];
  exit: Promise<unknown>;
}

async function startServer(def: ServerDef, work: string, tag?: string): Promise<Running> {
  const port = await freePort();
  const [cmd, args] = def.cmd(port, tag);
  const errPath = join(work, `${def.name}.stderr.log`);
  const errFd = openSync(errPath, 'a');
  const t0 = now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', errFd], env: { ...process.env, ...def.env } });
  closeSync(errFd);
  live.add(child);
  let exited = false;
  const exit = new Promise<unknown>((res) => child.once('exit', (code, sig) => {
    exited = true;
    live.delete(child);
    res({ code, sig });
  }));
  child.once('error', () => {});
  const ready = await waitForPort(port, 15_000, () => !exited);
  const startupMs = now() - t0;
  if (!ready) {
    child.kill('SIGKILL');
    await exit;
    throw new Error(`${def.name} did not start listening on ${port} (see ${errPath})`);
  }
  const pid = child.pid ?? -1; // -1: never started (then it never listened either)
  const pids = (): number[] => (def.nginx ? processTree(pid) : [pid]);
  // nginx forks its workers after it listens: wait for them before measuring.
  if (def.nginx) for (let i = 0; i < 200 && pids().length < 2; i++) await sleep(5);
  return { def, port, child, startupMs, pids, exit };
}

async function stopServer(s: Running): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  const t = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await s.exit;
  clearTimeout(t);
}

function killAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
}

// ---------------------------------------------------------------- load generators

/** Run child processes that read their curl config on stdin, all released at once. */
interface CurlResult {
  code: number | null;
  out: string;
  err: string;
  end: number;
}

async function curlBatch(configs: string[], timeoutMs: number): Promise<{ results: CurlResult[]; wallMs: number }> {
  const procs = configs.map(() => {
    const child = spawn('curl', ['-K', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 2000)));
    const done = new Promise<CurlResult>((res) => child.once('close', (code) => {
      live.delete(child);
      res({ code, out, err, end: now() });
    }));
    const spawned = new Promise<void>((res) => child.once('spawn', res));
    child.once('error', () => {});
    child.stdin.on('error', () => {});
    return { child, done, spawned };
  });
  await Promise.all(procs.map((p) => p.spawned));
  await sleep(50); // let every curl reach its read of stdin
  const t0 = now();
  procs.forEach((p, i) => p.child.stdin.end(configs[i]));
  const killer = setTimeout(() => procs.forEach((p) => p.child.kill('SIGKILL')), timeoutMs);
  const results = await Promise.all(procs.map((p) => p.done));
  clearTimeout(killer);
  const t1 = Math.max(...results.map((r) => r.end));
  return { results, wallMs: t1 - t0 };
}

const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** Workloads 1 and 2: `clients` curl processes each downloading `file` to /dev/null. */
/** What a workload measured: `primary` is the table's figure, `secondary` the second column. */
interface Measured {
  bytes: number;
  primary: number;
  secondary: number;
  seconds: number;
  requests?: number;
  connects?: number;
  note?: string;
}

async function downloadWorkload(server: Running, file: string, size: number, clients: number, timeoutMs: number): Promise<Measured> {
  const url = `http://127.0.0.1:${server.port}/${file}`;
  const cfg = `url = ${q(url)}\noutput = "/dev/null"\nsilent\nshow-error\nmax-time = ${Math.ceil(timeoutMs / 1000)}\n`
    + 'write-out = "%{http_code} %{size_download} %{time_total}\\n"\n';
  const { results, wallMs } = await curlBatch(Array<string>(clients).fill(cfg), timeoutMs + 5000);
  let bytes = 0;
  const times: number[] = [];
  for (const r of results) {
    const [code, got, total] = r.out.trim().split(/\s+/);
    if (r.code !== 0 || code !== '200' || Number(got) !== size) {
      throw new Error(`download failed: curl exit ${r.code}, HTTP ${code}, ${got}/${size} bytes ${r.err.trim()}`);
    }
    bytes += Number(got);
    times.push(Number(total));
  }
  const slowest = Math.max(...times);
  // One client: its own transfer time; many: bytes over the wall time of the whole batch.
  const seconds = clients === 1 ? (times[0] ?? NaN) : wallMs / 1000;
  return { bytes, primary: bytes / seconds / 1e6, secondary: slowest, seconds };
}

/** Deterministic PRNG, so every server gets the same random order. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Workload 4: sanboot-style range reads, `reads` per client over one keep-alive connection. */
function rangeConfigs(o: Options, url: string): string[] {
  const sectors = Math.floor((o.iso - o.rangeSize) / 512) + 1;
  return Array.from({ length: o.rangeClients }, (_, c) => {
    const rnd = mulberry32(0x5eed + c);
    const lines: string[] = [];
    for (let i = 0; i < o.rangeReads; i++) {
      const start = Math.floor(rnd() * sectors) * 512;
      lines.push(`url = ${q(url)}\nrange = "${start}-${start + o.rangeSize - 1}"\noutput = "/dev/null"\nsilent\nshow-error\nmax-time = 60\n`
        + 'write-out = "%{http_code} %{size_download} %{num_connects}\\n"\n');
    }
    return lines.join('next\n');
  });
}

async function rangeWorkload(server: Running, o: Options, file: string): Promise<Measured> {
  const url = `http://127.0.0.1:${server.port}/${file}`;
  const { results, wallMs } = await curlBatch(rangeConfigs(o, url), 600_000);
  let bytes = 0;
  let requests = 0;
  let connects = 0;
  for (const r of results) {
    const lines = r.out.trim().split('\n');
    if (r.code !== 0 || lines.length !== o.rangeReads) {
      throw new Error(`range client failed: curl exit ${r.code}, ${lines.length}/${o.rangeReads} responses ${r.err.trim()}`);
    }
    for (const line of lines) {
      const [code, got, nc] = line.split(/\s+/);
      if (code !== '206' || Number(got) !== o.rangeSize) throw new Error(`range read answered HTTP ${code} with ${got} bytes`);
      bytes += Number(got);
      connects += Number(nc);
      requests++;
    }
  }
  return { bytes, primary: bytes / (wallMs / 1000) / 1e6, secondary: requests / (wallMs / 1000), seconds: wallMs / 1000, connects };
}

/** Workload 3: wrk, keep-alive connections hammering the 1 KiB script. */
async function wrkWorkload(server: Running, o: Options, file: string): Promise<Measured> {
  const url = `http://127.0.0.1:${server.port}/${file}`;
  const args = ['-t', String(o.wrkThreads), '-c', String(o.wrkConnections), '-d', `${o.wrkDuration}s`, '--timeout', '5s', '--latency', url];
  const r = await new Promise<{ code: number | null; out: string }>((res) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), (o.wrkDuration + 30) * 1000);
    child.once('close', (code) => {
      clearTimeout(killer);
      live.delete(child);
      res({ code, out });
    });
  });
  const num = (re: RegExp): number => Number(re.exec(r.out)?.[1] ?? NaN);
  const unit: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, m: 60000 };
  const bytesIn: Record<string, number> = { B: 1, KB: KiB, MB: MiB, GB: GiB, TB: 1024 * GiB };
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\b/m.exec(r.out);
  const read = /requests in [\d.]+\w+, ([\d.]+)([KMGT]?B) read/.exec(r.out);
  const requests = num(/(\d+) requests in/);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  if (r.code !== 0 || !Number.isFinite(rps)) throw new Error(`wrk failed (${r.code}): ${r.out.slice(-500)}`);
  const errors = /Socket errors: (.*)/.exec(r.out)?.[1];
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const bytes = read ? Number(read[1]) * (bytesIn[read[2] ?? ''] ?? NaN) : NaN;
  return {
    bytes,
    requests,
    primary: rps,
    secondary: p99 ? Number(p99[1]) * (unit[p99[2] ?? ''] ?? NaN) : NaN,
    seconds: o.wrkDuration,
    note: [errors ? `socket errors: ${errors}` : '', non2xx ? `non-2xx: ${non2xx}` : ''].filter(Boolean).join('; '),
  };
}

// ---------------------------------------------------------------- the run

const WORKLOADS: Record<Workload, { title: string; unit: string; second: string; cpuUnit: string }> = {
  1: { title: 'W1 one client, BIG file', unit: 'MB/s', second: 'time s', cpuUnit: 's/GiB' },
  2: { title: 'W2 CLIENTS clients, MEDIUM file each', unit: 'MB/s aggr', second: 'slowest s', cpuUnit: 's/GiB' },
  3: { title: 'W3 CONNS keep-alive clients, 1 KiB boot.ipxe (wrk)', unit: 'req/s', second: 'p99 ms', cpuUnit: 'µs/req' },
  4: { title: 'W4 RC clients, RS ranges, 512 B-aligned, random, ISOSIZE ISO', unit: 'MB/s', second: 'req/s', cpuUnit: 's/GiB' },
};

/** Why a server sits out a workload (undefined: it runs). */
function sitsOut(d: ServerDef, w: Workload): string | undefined {
  if (d.only && !d.only.includes(w)) return `n/a: W${d.only.join(', W')} baseline only`;
  // The naive server ignores Range: it would send the whole ISO each time.
  if (w === 4 && !d.ranges) return 'n/a: ignores Range';
  return undefined;
}

/** One run's figures, or why it failed. */
interface RunResult extends Measured {
  cpu: number;
  cpuPer: number;
  peakRss: number;
  startupMs: number;
}
type Outcome = RunResult | { error: string };
const failed = (r: Outcome): r is { error: string } => 'error' in r;

async function measure(w: Workload, def: ServerDef, o: Options, files: Files, work: string, round: number): Promise<RunResult> {
  const server = await startServer(def, work, `W${w}-r${round}`);
  try {
    const pids = server.pids();
    const cpu0 = treeCpu(pids);
    let r: Measured;
    if (w === 1) r = await downloadWorkload(server, files.big, o.big, 1, 300_000);
    else if (w === 2) r = await downloadWorkload(server, files.medium, o.medium, o.clients, 600_000);
    else if (w === 3) r = await wrkWorkload(server, o, files.script);
    else r = await rangeWorkload(server, o, files.iso);
    const after = server.pids();
    const all = [...new Set([...pids, ...after])];
    const cpu = treeCpu(all) - cpu0;
    const mem = treeMem(after);
    const cpuPer = w === 3 ? (cpu / (r.requests ?? NaN)) * 1e6 : cpu / (r.bytes / GiB);
    return { ...r, cpu, cpuPer, peakRss: mem.hwm, startupMs: server.startupMs };
  } finally {
    await stopServer(server);
  }
}

interface Startup {
  startupMs: number;
  idleRss: number;
  startupAll: number[];
}

async function startupSamples(def: ServerDef, o: Options, work: string): Promise<Startup> {
  const startup: number[] = [];
  const idle: number[] = [];
  for (let i = 0; i < o.startupSamples; i++) {
    const s = await startServer(def, work);
    try {
      startup.push(s.startupMs);
      await sleep(500);
      idle.push(treeMem(s.pids()).rss);
    } finally {
      await stopServer(s);
    }
  }
  return { startupMs: median(startup), idleRss: median(idle), startupAll: startup };
}

function pad(s: string | number, n: number, right = false): string {
  const text = String(s);
  return right ? text.padStart(n) : text.padEnd(n);
}

/** Results by workload, then by server name: one entry per round. */
type Results = Partial<Record<Workload, Record<string, Outcome[]>>>;
/** One server's medians over the rounds of one workload, or why there are none. */
type Summary =
  | { kind: 'measured'; primary: number; secondary: number; rss: number; cpuPer: number; rounds: string[]; note: string | undefined }
  | { kind: 'skipped'; why: string };
type MeasuredSummary = Extract<Summary, { kind: 'measured' }>;
const measured = (s: Summary | undefined): s is MeasuredSummary => s?.kind === 'measured';

function summarise(rs: Outcome[], d: ServerDef, w: Workload): Summary {
  const ok = rs.filter((r): r is RunResult => !failed(r));
  if (!ok.length) {
    const first = rs[0];
    return { kind: 'skipped', why: first === undefined ? (sitsOut(d, w) ?? 'not run') : `ERR: ${failed(first) ? first.error : ''}` };
  }
  return {
    kind: 'measured',
    primary: median(ok.map((r) => r.primary)),
    secondary: median(ok.map((r) => r.secondary)),
    rss: median(ok.map((r) => r.peakRss)),
    cpuPer: median(ok.map((r) => r.cpuPer)),
    rounds: rs.map((r) => (failed(r) ? 'ERR' : fmtNum(r.primary))),
    note: ok.map((r) => r.note).filter(Boolean)[0],
  };
}

function renderTable(o: Options, defs: ServerDef[], results: Results, startups: Record<string, Startup>): string {
  const lines: string[] = [];
  const head = ['workload', 'server', 'median', 'unit', 'rounds', 'second', 'peak RSS MB', 'CPU', 'bootserve ÷ this'];
  const rows: string[][] = [];
  const refs: Partial<Record<Workload, { med: Record<string, Summary>; ref: string | undefined }>> = {};
  for (const w of o.workloads) {
    const meta = WORKLOADS[w];
    const title = meta.title
      .replace('BIG', fmtSize(o.big)).replace('CLIENTS', String(o.clients)).replace('MEDIUM', fmtSize(o.medium))
      .replace('CONNS', String(o.wrkConnections)).replace('RC', String(o.rangeClients)).replace('RS', fmtSize(o.rangeSize))
      .replace('ISOSIZE', fmtSize(o.iso));
    const med: Record<string, Summary> = {};
    for (const d of defs) med[d.name] = summarise(results[w]?.[d.name] ?? [], d, w);
    const primary = (name: string): number => {
      const m = med[name];
      return measured(m) ? m.primary : NaN;
    };
    const nginxNames = ['nginx-sendfile', 'nginx-nosendfile'].filter((n) => measured(med[n]));
    const ref = nginxNames.sort((a, b) => primary(b) - primary(a))[0];
    refs[w] = { med, ref };
    const b = med.bootserve;
    let first = true;
    for (const d of defs) {
      const m = med[d.name];
      const label = d.name + (d.name === ref ? ' (ref)' : '');
      if (!measured(m)) {
        rows.push([first ? title : '', label, '-', '', '', '', '', '', m?.why ?? '']);
      } else {
        const ratio = d.name === 'bootserve' || !measured(b) ? '' : `${(b.primary / m.primary).toFixed(2)}×`;
        rows.push([
          first ? title : '', label, fmtNum(m.primary), meta.unit, m.rounds.join(' '),
          `${fmtNum(m.secondary)} ${meta.second.split(' ').slice(-1)}`, fmtNum(m.rss / 1e6), `${fmtNum(m.cpuPer)} ${meta.cpuUnit}`, ratio,
        ]);
        if (m.note) rows.push(['', `  (${m.note})`, '', '', '', '', '', '', '']);
      }
      first = false;
    }
  }
  const isNote = (r: string[]): boolean => (r[1] ?? '').startsWith('  (');
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (i === 1 && isNote(r) ? 0 : (r[i] ?? '').length))));
  const numeric = new Set([2, 6, 8]);
  const fmtRow = (r: string[]): string => r.map((c, i) => pad(c, widths[i] ?? 0, numeric.has(i))).join('  ').trimEnd();
  lines.push(fmtRow(head));
  lines.push(widths.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows) {
    if (isNote(r)) lines.push(' '.repeat((widths[0] ?? 0) + 2) + r[1]);
    else lines.push(fmtRow(r));
  }

  const sampled = defs.flatMap((d) => {
    const s = startups[d.name];
    return s ? [{ name: d.name, s }] : [];
  });
  lines.push(`start-up ms (spawn → port accepts, median of ${o.startupSamples}): `
    + sampled.map(({ name, s }) => `${name} ${fmtNum(s.startupMs, 0)}`).join(', '));
  lines.push('idle RSS MB (0.5 s after start): ' + sampled.map(({ name, s }) => `${name} ${fmtNum(s.idleRss / 1e6, 1)}`).join(', '));

  // Targets.
  lines.push('Targets (bootserve):');
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'n/a ' : ok ? 'PASS' : 'MISS');
  const target = (text: string, value: string, ok: boolean | undefined): number =>
    lines.push(`  ${verdict(ok)}  ${pad(text, 46)} ${value}`);
  /** bootserve's figure against another's: "0.46× (a vs b UNIT)", and whether it meets `meets`. */
  const versus = (b: Summary | undefined, n: number, bFigure: (s: MeasuredSummary) => number, unit: string, extra = ''): string =>
    measured(b) ? `${(bFigure(b) / n).toFixed(2)}× (${fmtNum(bFigure(b))} vs ${fmtNum(n)} ${unit}${extra})` : '-';
  const check = (b: Summary | undefined, ok: (s: MeasuredSummary) => boolean): boolean | undefined => (measured(b) ? ok(b) : undefined);
  for (const w of [1, 2] as const) {
    const r = refs[w];
    if (!r) continue;
    const b = r.med.bootserve;
    const n = r.ref ? r.med[r.ref] : undefined;
    const naive = r.med['naive-node'];
    if (measured(n)) {
      const value = versus(b, n.primary, (s) => s.primary, 'MB/s', `, ${r.ref}`);
      target(`W${w} throughput ≥ 0.9× faster nginx`, value, check(b, (s) => s.primary >= 0.9 * n.primary));
    }
    if (measured(naive)) {
      const value = versus(b, naive.primary, (s) => s.primary, 'MB/s');
      target(`W${w} throughput ≥ 1.5× naive Node`, value, check(b, (s) => s.primary >= 1.5 * naive.primary));
    }
  }
  for (const w of [1, 2] as const) {
    const r = refs[w];
    const n = r?.ref ? r.med[r.ref] : undefined;
    if (!r || !measured(n)) continue;
    const b = r.med.bootserve;
    const value = versus(b, n.cpuPer, (s) => s.cpuPer, 's/GiB');
    target(`W${w} CPU s/GiB ≤ 1.5× nginx (${r.ref})`, value, check(b, (s) => s.cpuPer <= 1.5 * n.cpuPer));
  }
  // Issue 12: small requests against node:http's own ceiling, sanboot ranges against nginx.
  const hello = refs[3]?.med['node-hello'];
  if (refs[3] && measured(hello)) {
    const b = refs[3].med.bootserve;
    const rps = versus(b, hello.primary, (s) => s.primary, 'req/s');
    target('W3 req/s ≥ 0.7× node-hello', rps, check(b, (s) => s.primary >= 0.7 * hello.primary));
    const p99 = versus(b, hello.secondary, (s) => s.secondary, 'ms');
    target('W3 p99 < 1.5× node-hello', p99, check(b, (s) => s.secondary < 1.5 * hello.secondary));
  }
  const r4 = refs[4];
  const n4 = r4?.ref ? r4.med[r4.ref] : undefined;
  if (r4 && measured(n4)) {
    const b = r4.med.bootserve;
    const rate = versus(b, n4.primary, (s) => s.primary, 'MB/s');
    target(`W4 MB/s ≥ 0.6× faster nginx (${r4.ref})`, rate, check(b, (s) => s.primary >= 0.6 * n4.primary));
    const cpu = versus(b, n4.cpuPer, (s) => s.cpuPer, 's/GiB');
    target(`W4 CPU s/GiB ≤ 3× nginx (${r4.ref})`, cpu, check(b, (s) => s.cpuPer <= 3 * n4.cpuPer));
  }
  const b2 = refs[2]?.med.bootserve;
  if (measured(b2)) {
    const rss = b2.rss / 1e6;
    target('W2 peak RSS < 100 MB', `${fmtNum(rss, 1)} MB`, rss < 100);
  }
  const sb = startups.bootserve;
  if (sb) {
    target('idle RSS < 50 MB', `${fmtNum(sb.idleRss / 1e6, 1)} MB`, sb.idleRss / 1e6 < 50);
    target('start-up < 150 ms', `${fmtNum(sb.startupMs, 0)} ms`, sb.startupMs < 150);
  }
  return lines.join('\n');
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`bench: ${message(err)}\n`);
    process.exit(2);
  }
  if (o.help) return void process.stdout.write(HELP + '\n');

  if (o.build) {
    for (const repo of [o.repo, o.candidate].filter((r): r is string => r !== undefined)) {
      log(`building bootserve in ${repo} (npm run build)`);
      const r = run('npm', ['run', 'build'], { cwd: repo });
      if (!r.ok) {
        process.stderr.write(r.out);
        throw new Error(`npm run build failed in ${repo}`);
      }
    }
  }
  const tools = ensureTools(o);
  if (!tools.curl) throw new Error('curl is required (apt-get install curl)');
  const work = join(tmpdir(), `bootserve-bench-${process.pid}`);
  mkdirSync(work, { recursive: true });
  // Started as root, bootserve drops to nobody before it exits and writes its profile: let anyone write there.
  if (o.cpuProf) {
    mkdirSync(o.cpuProf, { recursive: true });
    chmodSync(o.cpuProf, 0o1777);
  }
  const files = ensureData(o);
  const defs = serverDefs(o, tools, work);
  if (!defs.some((d) => d.name === 'bootserve')) log('warning: bootserve is not among the servers: no ratios');
  if (!tools.wrk && o.workloads.includes(3)) {
    log('wrk missing: workload 3 skipped');
    o.workloads = o.workloads.filter((w) => w !== 3);
  }

  const started = new Date();
  const load0 = loadavg();
  log(`servers: ${defs.map((d) => d.name).join(', ')}; workloads ${o.workloads.join(',')}; ${o.rounds} round(s)`);

  const startups: Record<string, Startup> = {};
  for (const d of defs) {
    log(`start-up samples: ${d.name}`);
    try {
      startups[d.name] = await startupSamples(d, o, work);
    } catch (err) {
      log(`  ${message(err)}`);
    }
  }

  const results: Results = {};
  for (let round = 1; round <= o.rounds; round++) {
    for (const w of o.workloads) {
      for (const d of defs) {
        if (sitsOut(d, w)) continue;
        let r: Outcome;
        try {
          const m = await measure(w, d, o, files, work, round);
          r = m;
          const meta = WORKLOADS[w];
          log(`round ${round} W${w} ${pad(d.name, 16)} ${fmtNum(m.primary)} ${meta.unit}, ${fmtNum(m.secondary)} ${meta.second}, `
            + `peak RSS ${fmtNum(m.peakRss / 1e6)} MB, CPU ${fmtNum(m.cpu, 2)} s`);
        } catch (err) {
          const error = message(err).slice(0, 200);
          r = { error };
          log(`round ${round} W${w} ${d.name}: ERROR ${error}`);
        }
        ((results[w] ??= {})[d.name] ??= []).push(r);
      }
    }
  }

  const v = tools.versions;
  const cores = cpus().length;
  const loads = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  // Each line of the report is one string, however long: the concatenations only keep the source narrow.
  const header = [
    `bootserve benchmark — ${started.toISOString()} — ${o.quick ? 'QUICK (smoke test, not for comparison)' : 'full'} — `
      + `${o.rounds} round(s), interleaved (every server in turn each round, fresh process per run)`,
    `machine: ${cores} × ${cpus()[0]?.model?.trim() ?? '?'}; load average at start ${loads(load0)}; node ${v.node}, nginx ${v.nginx}, `
      + `serve ${v.serve}, http-server ${v['http-server']}, curl ${v.curl}, wrk ${v.wrk}`,
    'clients: W1, W2, W4 curl processes writing to /dev/null (W2 and W4 released together; W4 keep-alive, one curl per client); '
      + `W3 wrk ${v.wrk} from Debian (-t${o.wrkThreads} -c${o.wrkConnections} -d${o.wrkDuration}s). `
      + `Clients and servers share the same ${cores} cores.`,
    `installed by this run: ${tools.installed.length ? tools.installed.join(', ') : 'nothing (all present)'}`,
    'nginx: worker_processes auto, access_log off, otherwise nginx defaults; "(ref)" = the faster of sendfile on/off for that workload. '
      + 'naive-node = createReadStream(path).pipe(res); node-hello = node:http answering the 1 KiB script from memory (W3 only).',
    'MB = 10^6 bytes. CPU = server utime+stime (nginx: master+workers) per GiB sent, W3 per request. '
      + 'peak RSS = VmHWM (nginx: sum over processes). Ratio = bootserve median ÷ this server\'s median (higher is better for bootserve).',
    '',
  ];
  const table = renderTable(o, defs, results, startups);
  const footer = `load average at end ${loads(loadavg())} `
    + `(${cores} cores, shared with whatever else runs: the spread across rounds shows the noise)`;
  process.stdout.write(header.join('\n') + '\n' + table + '\n' + footer + '\n');
  log(`done in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s; load average now ${loads(loadavg())}`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, tools: tools.versions, startups, results }, null, 2));
  rmSync(work, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);
main().catch((err) => {
  killAll();
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
