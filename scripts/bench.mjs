#!/usr/bin/env node
// bootserve benchmark: bootserve against nginx (sendfile on/off), a naive Node server, `serve`
// and `http-server`, with node:http's own ceiling (node-hello) for small requests, on loopback, interleaved (round by round, every server in turn), one table
// of medians at the end. Plain Node, no dependencies; the load generators are curl and wrk.
// Usage: scripts/bench [--quick] [options]   (scripts/bench --help; scripts/README.md)
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
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
  -h, --help              this help
SIZE: bytes, or with K, M, G (binary).`;

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(String(text).trim());
  if (!m) throw new Error(`invalid size '${text}'`);
  return Math.round(Number(m[1]) * { '': 1, K: KiB, M: MiB, G: GiB }[m[2].toUpperCase()]);
}
const parseCount = (t) => {
  if (!/^\d+$/.test(String(t)) || Number(t) < 1) throw new Error(`invalid count '${t}'`);
  return Number(t);
};

const SPEC = {
  quick: 'flag', rounds: parseCount, big: parseSize, clients: parseCount, medium: parseSize,
  'wrk-connections': parseCount, 'wrk-duration': parseCount, 'wrk-threads': parseCount,
  iso: parseSize, 'range-clients': parseCount, 'range-size': parseSize, 'range-reads': parseCount,
  'startup-samples': parseCount, servers: String, workloads: String, repo: String, data: String,
  peers: String, candidate: String, 'no-build': 'flag', 'no-install': 'flag', json: String, help: 'flag',
};

function parseOptions(argv, env) {
  const raw = {};
  for (const name of Object.keys(SPEC)) {
    const v = env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
    if (v !== undefined && v !== '') raw[name] = SPEC[name] === 'flag' ? !['0', 'false', 'no', ''].includes(v.toLowerCase()) : v;
  }
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '-h') a = '--help';
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}' (see --help)`);
    let [name, inline] = a.slice(2).split(/=(.*)/s);
    if (!(name in SPEC)) throw new Error(`unknown option '${a}' (see --help)`);
    if (SPEC[name] === 'flag') raw[name] = true;
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      raw[name] = v;
    }
  }
  const quick = raw.quick === true;
  const o = {
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
    rangeReads: undefined,
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
    help: raw.help === true,
  };
  const camel = (n) => n.replace(/-(\w)/g, (_, c) => c.toUpperCase());
  for (const [name, v] of Object.entries(raw)) {
    if (['quick', 'help', 'no-build', 'no-install', 'servers', 'workloads'].includes(name)) continue;
    o[camel(name)] = SPEC[name] === String ? resolveMaybe(name, v) : SPEC[name](v);
  }
  if (raw['no-build']) o.build = false;
  if (raw['no-install']) o.install = false;
  if (raw.servers) o.servers = raw.servers.split(',').map((s) => s.trim()).filter(Boolean);
  if (raw.workloads) o.workloads = raw.workloads.split(',').map((s) => parseCount(s.trim())).filter((n) => n >= 1 && n <= 4);
  if (o.rangeSize > o.iso) throw new Error('--range-size is larger than --iso');
  o.rangeReads ??= Math.max(1, Math.floor(o.iso / o.rangeSize / o.rangeClients));
  return o;
}
function resolveMaybe(name, v) {
  return ['repo', 'data', 'peers', 'json', 'candidate'].includes(name) ? resolve(v) : v;
}

// ---------------------------------------------------------------- small helpers

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtSize = (n) => (n % GiB === 0 ? `${n / GiB} GiB` : n % MiB === 0 ? `${n / MiB} MiB` : n % KiB === 0 ? `${n / KiB} KiB` : `${n} B`);
function fmtNum(x, digits) {
  if (!Number.isFinite(x)) return '-';
  if (digits !== undefined) return x.toFixed(digits);
  const a = Math.abs(x);
  return a >= 1000 ? Math.round(x).toString() : a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}

function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000, ...opts });
  return { ok: r.status === 0, out: (r.stdout ?? '') + (r.stderr ?? ''), status: r.status };
}

/** A free TCP port on 127.0.0.1 (listen on 0, read, close). */
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Resolve true once 127.0.0.1:port accepts a connection; false after timeoutMs. */
async function waitForPort(port, timeoutMs = 10_000, isAlive = () => true) {
  const deadline = now() + timeoutMs;
  for (let attempt = 0; attempt < 100_000 && now() < deadline; attempt++) {
    const ok = await new Promise((res) => {
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
function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK, childCpu: (Number(f[13]) + Number(f[14])) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM in bytes. */
function procMem(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** pid and every descendant (nginx: master + workers). */
function processTree(root) {
  const byParent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (!st) continue;
    const list = byParent.get(st.ppid) ?? [];
    list.push(Number(name));
    byParent.set(st.ppid, list);
  }
  const out = [];
  const stack = [root];
  while (stack.length && out.length < 1000) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(byParent.get(p) ?? []));
  }
  return out;
}

/** CPU seconds of a server: every process of the tree, plus what its reaped children used. */
function treeCpu(pids) {
  let cpu = 0;
  for (const p of pids) {
    const st = procStat(p);
    if (st) cpu += st.cpu + st.childCpu;
  }
  return cpu;
}
const treeMem = (pids) => pids.map(procMem).reduce((a, m) => ({ rss: a.rss + m.rss, hwm: a.hwm + m.hwm }), { rss: 0, hwm: 0 });

// ---------------------------------------------------------------- setup

function ensureTools(o) {
  const missing = [];
  const installed = [];
  if (!which('curl')) missing.push('curl');
  if (!which('nginx') && !existsSync('/usr/sbin/nginx')) missing.push('nginx-light');
  if (!which('wrk')) missing.push('wrk');
  if (missing.length && o.install) {
    log(`installing from Debian's packages: ${missing.join(' ')}`);
    const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
    const cmd = [...sudo, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', ...missing];
    let r = run(cmd[0], cmd.slice(1));
    if (!r.ok) {
      log('apt-get install failed; trying apt-get update first');
      run(sudo[0] ?? 'apt-get', sudo.length ? [...sudo.slice(1), 'apt-get', 'update', '-q'] : ['update', '-q']);
      r = run(cmd[0], cmd.slice(1));
    }
    if (!r.ok) log(`apt-get install failed:\n${r.out.slice(-2000)}`);
    else installed.push(...missing.map((m) => `${m} (apt-get)`));
  }
  const peersBin = (pkg, rel) => join(o.peers, 'node_modules', pkg, rel);
  const servePath = peersBin('serve', 'build/main.js');
  const httpServerPath = peersBin('http-server', 'bin/http-server');
  if ((!existsSync(servePath) || !existsSync(httpServerPath)) && o.install) {
    log(`installing serve and http-server from npm into ${o.peers} (not into the project)`);
    mkdirSync(o.peers, { recursive: true });
    const r = run('npm', ['install', '--prefix', o.peers, '--no-audit', '--no-fund', '--no-save', 'serve', 'http-server'], { cwd: o.peers });
    if (!r.ok) log(`npm install failed:\n${r.out.slice(-2000)}`);
    else installed.push(`serve, http-server (npm, ${o.peers})`);
  }
  const nginx = which('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
  const version = (cmd, args, re) => (re.exec(run(cmd, args).out)?.[1] ?? '?');
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
      serve: existsSync(servePath) ? JSON.parse(readFileSync(peersBin('serve', 'package.json'), 'utf8')).version : 'missing',
      'http-server': existsSync(httpServerPath) ? JSON.parse(readFileSync(peersBin('http-server', 'package.json'), 'utf8')).version : 'missing',
    },
  };
}

/** Random-byte files, generated once and reused while their size matches. */
function ensureData(o) {
  const dir = o.data;
  mkdirSync(dir, { recursive: true });
  const files = {
    big: `big-${o.big}.bin`,
    medium: `medium-${o.medium}.bin`,
    iso: `disk-${o.iso}.iso`,
    script: 'boot.ipxe',
  };
  const make = (name, size) => {
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
  let script = '#!ipxe\n# bootserve benchmark script\ndhcp\nkernel http://${next-server}/vmlinuz initrd=initrd.img console=ttyS0\ninitrd http://${next-server}/initrd.img\n';
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
`;

function nginxConfig(prefix, root, port, sendfile) {
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

/** The servers: how to start each on a port. */
function serverDefs(o, tools, work) {
  const node = process.execPath;
  const dir = o.data;
  const defs = [
    {
      name: 'bootserve',
      ranges: true,
      cmd: (port) => [node, [join(o.repo, 'bin/bootserve.js'), dir, '--host', '127.0.0.1', '--port', String(port), '--quiet', '--max-connections', '100000', '--max-connections-per-ip', '100000']],
    },
  ];
  if (o.candidate) {
    defs.push({
      name: 'candidate',
      ranges: true,
      cmd: (port) => [node, [join(o.candidate, 'bin/bootserve.js'), dir, '--host', '127.0.0.1', '--port', String(port), '--quiet', '--max-connections', '100000', '--max-connections-per-ip', '100000']],
    });
  }
  if (tools.nginx) {
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
          return [tools.nginx, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log'), '-g', 'daemon off;']];
        },
      });
    }
  }
  const naivePath = join(work, 'naive-server.mjs');
  writeFileSync(naivePath, NAIVE_SERVER);
  defs.push({ name: 'naive-node', ranges: false, cmd: (port) => [node, [naivePath, dir, String(port)]] });
  const helloPath = join(work, 'hello-server.mjs');
  writeFileSync(helloPath, HELLO_SERVER);
  defs.push({ name: 'node-hello', ranges: false, only: [3], cmd: (port) => [node, [helloPath, join(dir, 'boot.ipxe'), String(port)]] });
  if (tools.servePath) {
    defs.push({
      name: 'serve',
      ranges: true,
      env: { NO_UPDATE_CHECK: '1' },
      cmd: (port) => [node, [tools.servePath, '-L', '-n', '--no-port-switching', '-l', `tcp://127.0.0.1:${port}`, dir]],
    });
  }
  if (tools.httpServerPath) {
    defs.push({ name: 'http-server', ranges: true, cmd: (port) => [node, [tools.httpServerPath, dir, '-a', '127.0.0.1', '-p', String(port), '-s']] });
  }
  const alias = { naive: 'naive-node', hello: 'node-hello' };
  if (o.servers) {
    const want = new Set(o.servers.map((s) => alias[s] ?? s));
    for (const w of want) if (!defs.some((d) => d.name === w)) log(`warning: server '${w}' unknown or unavailable, skipped`);
    return defs.filter((d) => want.has(d.name));
  }
  return defs;
}

// ---------------------------------------------------------------- server lifecycle

const live = new Set(); // child processes to kill on exit

async function startServer(def, work) {
  const port = await freePort();
  const [cmd, args] = def.cmd(port);
  const errPath = join(work, `${def.name}.stderr.log`);
  const errFd = openSync(errPath, 'a');
  const t0 = now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', errFd], env: { ...process.env, ...def.env } });
  closeSync(errFd);
  live.add(child);
  let exited = false;
  const exit = new Promise((res) => child.once('exit', (code, sig) => {
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
  const pids = () => (def.nginx ? processTree(child.pid) : [child.pid]);
  // nginx forks its workers after it listens: wait for them before measuring.
  if (def.nginx) for (let i = 0; i < 200 && pids().length < 2; i++) await sleep(5);
  return { def, port, child, startupMs, pids, exit };
}

async function stopServer(s) {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGTERM');
  const t = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await s.exit;
  clearTimeout(t);
}

function killAll() {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
}

// ---------------------------------------------------------------- load generators

/** Run child processes that read their curl config on stdin, all released at once. */
async function curlBatch(configs, timeoutMs) {
  const procs = configs.map(() => {
    const child = spawn('curl', ['-K', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d.slice(0, 2000)));
    const done = new Promise((res) => child.once('close', (code) => {
      live.delete(child);
      res({ code, out, err, end: now() });
    }));
    const spawned = new Promise((res) => child.once('spawn', res));
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

const q = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** Workloads 1 and 2: `clients` curl processes each downloading `file` to /dev/null. */
async function downloadWorkload(server, file, size, clients, timeoutMs) {
  const url = `http://127.0.0.1:${server.port}/${file}`;
  const cfg = `url = ${q(url)}\noutput = "/dev/null"\nsilent\nshow-error\nmax-time = ${Math.ceil(timeoutMs / 1000)}\nwrite-out = "%{http_code} %{size_download} %{time_total}\\n"\n`;
  const { results, wallMs } = await curlBatch(Array(clients).fill(cfg), timeoutMs + 5000);
  let bytes = 0;
  const times = [];
  for (const r of results) {
    const [code, got, total] = r.out.trim().split(/\s+/);
    if (r.code !== 0 || code !== '200' || Number(got) !== size) throw new Error(`download failed: curl exit ${r.code}, HTTP ${code}, ${got}/${size} bytes ${r.err.trim()}`);
    bytes += Number(got);
    times.push(Number(total));
  }
  const slowest = Math.max(...times);
  // One client: its own transfer time; many: bytes over the wall time of the whole batch.
  const seconds = clients === 1 ? times[0] : wallMs / 1000;
  return { bytes, primary: bytes / seconds / 1e6, secondary: slowest, seconds };
}

/** Deterministic PRNG, so every server gets the same random order. */
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Workload 4: sanboot-style range reads, `reads` per client over one keep-alive connection. */
function rangeConfigs(o, url) {
  const sectors = Math.floor((o.iso - o.rangeSize) / 512) + 1;
  return Array.from({ length: o.rangeClients }, (_, c) => {
    const rnd = mulberry32(0x5eed + c);
    const lines = [];
    for (let i = 0; i < o.rangeReads; i++) {
      const start = Math.floor(rnd() * sectors) * 512;
      lines.push(`url = ${q(url)}\nrange = "${start}-${start + o.rangeSize - 1}"\noutput = "/dev/null"\nsilent\nshow-error\nmax-time = 60\nwrite-out = "%{http_code} %{size_download} %{num_connects}\\n"\n`);
    }
    return lines.join('next\n');
  });
}

async function rangeWorkload(server, o, file) {
  const url = `http://127.0.0.1:${server.port}/${file}`;
  const { results, wallMs } = await curlBatch(rangeConfigs(o, url), 600_000);
  let bytes = 0;
  let requests = 0;
  let connects = 0;
  for (const r of results) {
    const lines = r.out.trim().split('\n');
    if (r.code !== 0 || lines.length !== o.rangeReads) throw new Error(`range client failed: curl exit ${r.code}, ${lines.length}/${o.rangeReads} responses ${r.err.trim()}`);
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
async function wrkWorkload(server, o, file) {
  const url = `http://127.0.0.1:${server.port}/${file}`;
  const args = ['-t', String(o.wrkThreads), '-c', String(o.wrkConnections), '-d', `${o.wrkDuration}s`, '--timeout', '5s', '--latency', url];
  const r = await new Promise((res) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), (o.wrkDuration + 30) * 1000);
    child.once('close', (code) => {
      clearTimeout(killer);
      live.delete(child);
      res({ code, out });
    });
  });
  const num = (re) => Number(re.exec(r.out)?.[1] ?? NaN);
  const unit = { us: 1e-3, ms: 1, s: 1000, m: 60000 };
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\b/m.exec(r.out);
  const read = /requests in [\d.]+\w+, ([\d.]+)([KMGT]?B) read/.exec(r.out);
  const requests = num(/(\d+) requests in/);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  if (r.code !== 0 || !Number.isFinite(rps)) throw new Error(`wrk failed (${r.code}): ${r.out.slice(-500)}`);
  const errors = /Socket errors: (.*)/.exec(r.out)?.[1];
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  const bytes = read ? Number(read[1]) * { B: 1, KB: KiB, MB: MiB, GB: GiB, TB: 1024 * GiB }[read[2]] : NaN;
  return {
    bytes,
    requests,
    primary: rps,
    secondary: p99 ? Number(p99[1]) * unit[p99[2]] : NaN,
    seconds: o.wrkDuration,
    note: [errors ? `socket errors: ${errors}` : '', non2xx ? `non-2xx: ${non2xx}` : ''].filter(Boolean).join('; '),
  };
}

// ---------------------------------------------------------------- the run

const WORKLOADS = {
  1: { title: 'W1 one client, BIG file', unit: 'MB/s', second: 'time s', cpuUnit: 's/GiB' },
  2: { title: 'W2 CLIENTS clients, MEDIUM file each', unit: 'MB/s aggr', second: 'slowest s', cpuUnit: 's/GiB' },
  3: { title: 'W3 CONNS keep-alive clients, 1 KiB boot.ipxe (wrk)', unit: 'req/s', second: 'p99 ms', cpuUnit: 'µs/req' },
  4: { title: 'W4 RC clients, RS ranges, 512 B-aligned, random, ISOSIZE ISO', unit: 'MB/s', second: 'req/s', cpuUnit: 's/GiB' },
};

/** Why a server sits out a workload (undefined: it runs). */
function sitsOut(d, w) {
  if (d.only && !d.only.includes(w)) return `n/a: W${d.only.join(', W')} baseline only`;
  // The naive server ignores Range: it would send the whole ISO each time.
  if (w === 4 && !d.ranges) return 'n/a: ignores Range';
  return undefined;
}

async function measure(w, def, o, files, work) {
  const server = await startServer(def, work);
  try {
    const pids = server.pids();
    const cpu0 = treeCpu(pids);
    let r;
    if (w === 1) r = await downloadWorkload(server, files.big, o.big, 1, 300_000);
    else if (w === 2) r = await downloadWorkload(server, files.medium, o.medium, o.clients, 600_000);
    else if (w === 3) r = await wrkWorkload(server, o, files.script);
    else r = await rangeWorkload(server, o, files.iso);
    const after = server.pids();
    const all = [...new Set([...pids, ...after])];
    const cpu = treeCpu(all) - cpu0;
    const mem = treeMem(after);
    const cpuPer = w === 3 ? (cpu / r.requests) * 1e6 : cpu / (r.bytes / GiB);
    return { ...r, cpu, cpuPer, peakRss: mem.hwm, startupMs: server.startupMs };
  } finally {
    await stopServer(server);
  }
}

async function startupSamples(def, o, work) {
  const startup = [];
  const idle = [];
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

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

function renderTable(o, defs, results, startups, tools) {
  const lines = [];
  const head = ['workload', 'server', 'median', 'unit', 'rounds', 'second', 'peak RSS MB', 'CPU', 'bootserve ÷ this'];
  const rows = [];
  const refs = {};
  for (const w of o.workloads) {
    const meta = WORKLOADS[w];
    const title = meta.title
      .replace('BIG', fmtSize(o.big)).replace('CLIENTS', o.clients).replace('MEDIUM', fmtSize(o.medium))
      .replace('CONNS', o.wrkConnections).replace('RC', o.rangeClients).replace('RS', fmtSize(o.rangeSize)).replace('ISOSIZE', fmtSize(o.iso));
    const med = {};
    for (const d of defs) {
      const rs = results[w]?.[d.name] ?? [];
      const ok = rs.filter((r) => !r.error);
      med[d.name] = ok.length
        ? { primary: median(ok.map((r) => r.primary)), secondary: median(ok.map((r) => r.secondary)), rss: median(ok.map((r) => r.peakRss)), cpuPer: median(ok.map((r) => r.cpuPer)), rounds: rs.map((r) => (r.error ? 'ERR' : fmtNum(r.primary))), note: ok.map((r) => r.note).filter(Boolean)[0] }
        : undefined;
      if (!ok.length) med[d.name] = { skipped: rs.length === 0 ? (sitsOut(d, w) ?? 'not run') : `ERR: ${rs[0].error}` };
    }
    const nginxNames = ['nginx-sendfile', 'nginx-nosendfile'].filter((n) => med[n] && !med[n].skipped);
    const ref = nginxNames.sort((a, b) => med[b].primary - med[a].primary)[0];
    refs[w] = { med, ref };
    const b = med.bootserve;
    let first = true;
    for (const d of defs) {
      const m = med[d.name];
      const label = d.name + (d.name === ref ? ' (ref)' : '');
      if (m.skipped) {
        rows.push([first ? title : '', label, '-', '', '', '', '', '', m.skipped]);
      } else {
        const ratio = d.name === 'bootserve' || !b || b.skipped ? '' : `${(b.primary / m.primary).toFixed(2)}×`;
        rows.push([first ? title : '', label, fmtNum(m.primary), meta.unit, m.rounds.join(' '), `${fmtNum(m.secondary)} ${meta.second.split(' ').slice(-1)}`, fmtNum(m.rss / 1e6), `${fmtNum(m.cpuPer)} ${meta.cpuUnit}`, ratio]);
        if (m.note) rows.push(['', `  (${m.note})`, '', '', '', '', '', '', '']);
      }
      first = false;
    }
  }
  const all = [head, ...rows.filter(Boolean)];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (i === 1 && r[1].startsWith('  (') ? 0 : String(r[i]).length))));
  const numeric = new Set([2, 6, 8]);
  const fmtRow = (r) => r.map((c, i) => pad(c, widths[i], numeric.has(i))).join('  ').trimEnd();
  lines.push(fmtRow(head));
  lines.push(widths.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows) {
    if (r === null) lines.push('');
    else if (r[1].startsWith('  (')) lines.push(' '.repeat(widths[0] + 2) + r[1]);
    else lines.push(fmtRow(r));
  }

  const measured = defs.filter((d) => startups[d.name]);
  lines.push(`start-up ms (spawn → port accepts, median of ${o.startupSamples}): ` + measured.map((d) => `${d.name} ${fmtNum(startups[d.name].startupMs, 0)}`).join(', '));
  lines.push('idle RSS MB (0.5 s after start): ' + measured.map((d) => `${d.name} ${fmtNum(startups[d.name].idleRss / 1e6, 1)}`).join(', '));

  // Targets.
  lines.push('Targets (bootserve):');
  const verdict = (ok) => (ok === undefined ? 'n/a ' : ok ? 'PASS' : 'MISS');
  const target = (text, value, ok) => lines.push(`  ${verdict(ok)}  ${pad(text, 46)} ${value}`);
  for (const w of [1, 2]) {
    const r = refs[w];
    if (!r) continue;
    const b = r.med.bootserve;
    const n = r.ref ? r.med[r.ref] : undefined;
    const naive = r.med['naive-node'];
    const okB = b && !b.skipped;
    if (n) target(`W${w} throughput ≥ 0.9× faster nginx`, okB ? `${(b.primary / n.primary).toFixed(2)}× (${fmtNum(b.primary)} vs ${fmtNum(n.primary)} MB/s, ${r.ref})` : '-', okB ? b.primary >= 0.9 * n.primary : undefined);
    if (naive && !naive.skipped) target(`W${w} throughput ≥ 1.5× naive Node`, okB ? `${(b.primary / naive.primary).toFixed(2)}× (${fmtNum(b.primary)} vs ${fmtNum(naive.primary)} MB/s)` : '-', okB ? b.primary >= 1.5 * naive.primary : undefined);
  }
  for (const w of [1, 2]) {
    const r = refs[w];
    if (!r?.ref) continue;
    const b = r.med.bootserve;
    const n = r.med[r.ref];
    const okB = b && !b.skipped;
    target(`W${w} CPU s/GiB ≤ 1.5× nginx (${r.ref})`, okB ? `${(b.cpuPer / n.cpuPer).toFixed(2)}× (${fmtNum(b.cpuPer)} vs ${fmtNum(n.cpuPer)} s/GiB)` : '-', okB ? b.cpuPer <= 1.5 * n.cpuPer : undefined);
  }
  // Issue 12: small requests against node:http's own ceiling, sanboot ranges against nginx.
  const hello = refs[3]?.med['node-hello'];
  if (refs[3] && hello && !hello.skipped) {
    const b = refs[3].med.bootserve;
    const okB = b && !b.skipped;
    target('W3 req/s ≥ 0.7× node-hello', okB ? `${(b.primary / hello.primary).toFixed(2)}× (${fmtNum(b.primary)} vs ${fmtNum(hello.primary)} req/s)` : '-', okB ? b.primary >= 0.7 * hello.primary : undefined);
    target('W3 p99 < 1.5× node-hello', okB ? `${(b.secondary / hello.secondary).toFixed(2)}× (${fmtNum(b.secondary)} vs ${fmtNum(hello.secondary)} ms)` : '-', okB ? b.secondary < 1.5 * hello.secondary : undefined);
  }
  if (refs[4]?.ref) {
    const b = refs[4].med.bootserve;
    const n = refs[4].med[refs[4].ref];
    const okB = b && !b.skipped;
    target(`W4 MB/s ≥ 0.6× faster nginx (${refs[4].ref})`, okB ? `${(b.primary / n.primary).toFixed(2)}× (${fmtNum(b.primary)} vs ${fmtNum(n.primary)} MB/s)` : '-', okB ? b.primary >= 0.6 * n.primary : undefined);
    target(`W4 CPU s/GiB ≤ 3× nginx (${refs[4].ref})`, okB ? `${(b.cpuPer / n.cpuPer).toFixed(2)}× (${fmtNum(b.cpuPer)} vs ${fmtNum(n.cpuPer)} s/GiB)` : '-', okB ? b.cpuPer <= 3 * n.cpuPer : undefined);
  }
  if (refs[2]?.med.bootserve && !refs[2].med.bootserve.skipped) {
    const rss = refs[2].med.bootserve.rss / 1e6;
    target('W2 peak RSS < 100 MB', `${fmtNum(rss, 1)} MB`, rss < 100);
  }
  const sb = startups.bootserve;
  if (sb) {
    target('idle RSS < 50 MB', `${fmtNum(sb.idleRss / 1e6, 1)} MB`, sb.idleRss / 1e6 < 50);
    target('start-up < 150 ms', `${fmtNum(sb.startupMs, 0)} ms`, sb.startupMs < 150);
  }
  return lines.join('\n');
}

async function main() {
  let o;
  try {
    o = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(2);
  }
  if (o.help) return void process.stdout.write(HELP + '\n');

  if (o.build) {
    for (const repo of [o.repo, o.candidate].filter(Boolean)) {
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

  const startups = {};
  for (const d of defs) {
    log(`start-up samples: ${d.name}`);
    try {
      startups[d.name] = await startupSamples(d, o, work);
    } catch (err) {
      log(`  ${err.message}`);
    }
  }

  const results = {};
  for (let round = 1; round <= o.rounds; round++) {
    for (const w of o.workloads) {
      for (const d of defs) {
        if (sitsOut(d, w)) continue;
        let r;
        try {
          r = await measure(w, d, o, files, work);
          log(`round ${round} W${w} ${pad(d.name, 16)} ${fmtNum(r.primary)} ${WORKLOADS[w].unit}, ${fmtNum(r.secondary)} ${WORKLOADS[w].second}, peak RSS ${fmtNum(r.peakRss / 1e6)} MB, CPU ${fmtNum(r.cpu, 2)} s`);
        } catch (err) {
          r = { error: err.message.slice(0, 200) };
          log(`round ${round} W${w} ${d.name}: ERROR ${r.error}`);
        }
        ((results[w] ??= {})[d.name] ??= []).push(r);
      }
    }
  }

  const header = [
    `bootserve benchmark — ${started.toISOString()} — ${o.quick ? 'QUICK (smoke test, not for comparison)' : 'full'} — ${o.rounds} round(s), interleaved (every server in turn each round, fresh process per run)`,
    `machine: ${cpus().length} × ${cpus()[0]?.model?.trim() ?? '?'}; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}; node ${tools.versions.node}, nginx ${tools.versions.nginx}, serve ${tools.versions.serve}, http-server ${tools.versions['http-server']}, curl ${tools.versions.curl}, wrk ${tools.versions.wrk}`,
    `clients: W1, W2, W4 curl processes writing to /dev/null (W2 and W4 released together; W4 keep-alive, one curl per client); W3 wrk ${tools.versions.wrk} from Debian (-t${o.wrkThreads} -c${o.wrkConnections} -d${o.wrkDuration}s). Clients and servers share the same ${cpus().length} cores.`,
    `installed by this run: ${tools.installed.length ? tools.installed.join(', ') : 'nothing (all present)'}`,
    `nginx: worker_processes auto, access_log off, otherwise nginx defaults; "(ref)" = the faster of sendfile on/off for that workload. naive-node = createReadStream(path).pipe(res); node-hello = node:http answering the 1 KiB script from memory (W3 only).`,
    `MB = 10^6 bytes. CPU = server utime+stime (nginx: master+workers) per GiB sent, W3 per request. peak RSS = VmHWM (nginx: sum over processes). Ratio = bootserve median ÷ this server's median (higher is better for bootserve).`,
    '',
  ];
  const table = renderTable(o, defs, results, startups, tools);
  const footer = `load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')} (${cpus().length} cores, shared with whatever else runs: the spread across rounds shows the noise)`;
  process.stdout.write(header.join('\n') + '\n' + table + '\n' + footer + '\n');
  log(`done in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s; load average now ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
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
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
