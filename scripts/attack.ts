// Attack a bootserve of our own on loopback and print one table. TypeScript run by tsx, Node
// built-ins only (and lib/'s /proc address spelling). Run it through scripts/attack (which
// raises the descriptor limit); ATTACK.md says how to read the table. Every scenario is bounded
// in connections and time, and the server, its temp directory, child processes and sockets are
// torn down on exit, error or signal.
//
// Client-side "open" is read from the client's kernel sockets in /proc/net/tcp: a socket that
// never reads never hears about a reset from Node (libuv stops polling a paused socket), but its
// kernel socket leaves the table the moment the reset arrives. After the checkpoint the sockets
// are also resumed, so Node itself sees every reset (reported as "app-level").
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseDuration as parseCliDuration } from '../lib/cli.js';
import { procAddress } from '../lib/http/progress.js';

const SELF = fileURLToPath(import.meta.url);
const BIN = path.resolve(path.dirname(SELF), '../bin/bootserve.js');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SERVER_FLAGS = ['stall-timeout', 'header-timeout', 'keepalive-timeout', 'max-connections', 'max-connections-per-ip'] as const;
const SCENARIOS = ['never-read', 'slowloris', 'slow-readers', 'per-ip-cap', 'rates', 'rates-mtu1500'] as const;
const HEALTHY_ADDR = '127.0.9.9';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const now = (): number => performance.now();

function die(message: string): never {
  process.stderr.write(`attack: ${message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Cleanup: whatever we start is registered here and undone on any way out.

const cleanups: (() => unknown)[] = [];
const liveSockets = new Set<net.Socket>();
let cleaned = false;
function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}
function cleanupAll(): void {
  if (cleaned) return;
  cleaned = true;
  for (const s of liveSockets) s.destroy();
  for (const fn of cleanups.reverse()) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`attack: ${sig}, cleaning up\n`);
    cleanupAll();
    process.exit(130);
  });
}
for (const ev of ['uncaughtException', 'unhandledRejection']) {
  process.on(ev, (err: unknown) => {
    process.stderr.write(`attack: ${err instanceof Error ? err.stack : String(err)}\n`);
    cleanupAll();
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------------------------
// Arguments

/** The server's own duration syntax (lib/cli.ts), dying with its message instead of throwing. */
function parseDuration(text: string): number {
  try {
    return parseCliDuration(text);
  } catch {
    return die(`invalid duration '${text}'`);
  }
}

type ServerFlag = (typeof SERVER_FLAGS)[number];
type Scenario = (typeof SCENARIOS)[number];
const isServerFlag = (name: string): name is ServerFlag => (SERVER_FLAGS as readonly string[]).includes(name);
const isScenario = (name: string): name is Scenario => (SCENARIOS as readonly string[]).includes(name);
/** This process's job: the attack itself, or a helper it started (a healthy download, the netns rates run). */
type Internal = { kind: 'download'; url: string; local: string; limitMs: number } | { kind: 'inner'; scenario: string };
interface Args {
  quick: boolean;
  only: Scenario[] | null;
  server: Partial<Record<ServerFlag, string>>;
  internal: Internal | null;
  connections: number | null;
  serverLog?: string;
}

function parseArgs(argv: string[]): Args {
  const o: Args = { quick: false, only: null, server: {}, internal: null, connections: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? (eq < 0 ? a.slice(2) : a.slice(2, eq)) : a;
    const inline = a.startsWith('--') && eq >= 0 ? a.slice(eq + 1) : undefined;
    const val = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) die(`--${name} needs a value`);
      return v;
    };
    if (name === 'quick') o.quick = true;
    else if (name === 'only') {
      const list = val().split(',');
      const unknown = list.find((s) => !isScenario(s));
      if (unknown !== undefined) die(`--only: unknown scenario '${unknown}' (${SCENARIOS.join(', ')})`);
      o.only = list.filter(isScenario);
    }
    else if (name === 'connections') o.connections = Number(val());
    else if (name === 'server-log') o.serverLog = val();
    else if (isServerFlag(name)) o.server[name] = val();
    else if (name === '_download') o.internal = { kind: 'download', url: val(), local: val(), limitMs: Number(val()) };
    else if (name === '_inner') o.internal = { kind: 'inner', scenario: val() };
    else if (name === 'help' || name === '-h') {
      process.stdout.write(
        `Usage: scripts/attack [--quick] [--only ${SCENARIOS.join('|')}[,...]] [--connections N] [--server-log FILE]\n` +
          `                      [--${SERVER_FLAGS.join(' V] [--')} V]\n` +
          'Starts bootserve on 127.0.0.1 with the given flags, attacks it, prints one table. See scripts/ATTACK.md.\n',
      );
      process.exit(0);
    } else die(`unknown argument '${a}' (see --help)`);
  }
  if (o.connections !== null && !(o.connections >= 1 && o.connections <= 5000)) die('--connections: 1..5000');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const stallMs = parseDuration(opts.server['stall-timeout'] ?? '10s');
const headerMs = parseDuration(opts.server['header-timeout'] ?? '10s');
const PER_IP_CAP = Number(opts.server['max-connections-per-ip'] ?? 64);
const Q = opts.quick;
const CONF = {
  conns: opts.connections ?? (Q ? 100 : 1000),
  slowReaders: Q ? 20 : 200,
  slowRate: 2 * KiB,
  slowRunMs: Q ? Math.max(15_000, stallMs * 2) : Math.max(35_000, stallMs * 3.5),
  rates: [64, 32, 24, 16, 12, 8, 4, 2].map((k) => k * KiB),
  readersPerRate: Q ? 1 : 2,
  rateRunMs: Q ? Math.max(15_000, stallMs * 1.5) : Math.max(35_000, stallMs * 3.5),
  healthySize: Q ? 256 * MiB : GiB,
  // Attack connections per source address: well under the per-address cap.
  perAddr: Math.max(1, Math.min(25, Math.floor(PER_IP_CAP * 0.8))),
};

// ---------------------------------------------------------------------------------------------
// Kernel views: /proc/net/tcp (both ends of every loopback connection), ss, /proc/PID.

/** "127.0.0.2", 40000 -> "0200007F:9C40", as /proc/net/tcp spells it (lib/http/progress.ts). */
const hexKey = (address: string, port: number): string => procAddress(address, port, false);

/** Server sockets established on `port`, and the set of client-side sockets still open to it. */
function tcpTable(port: number): { serverEstablished: number; clientOpen: Set<string> } | null {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const healthyHex = hexKey(HEALTHY_ADDR, 0).split(':')[0];
  let text = '';
  try {
    text = fs.readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return null;
  }
  let serverEstablished = 0;
  const clientOpen = new Set<string>();
  for (const line of text.split('\n')) {
    const [, local = '', remote = '', st] = line.trim().split(/\s+/);
    if (st === undefined || !local.includes(':')) continue;
    if (local.endsWith(`:${portHex}`) && st === '01' && !remote.startsWith(healthyHex ?? '')) serverEstablished++;
    // ESTABLISHED, or CLOSE_WAIT (the server sent FIN and we have not closed yet).
    else if (remote.endsWith(`:${portHex}`) && (st === '01' || st === '08')) clientOpen.add(local);
  }
  return { serverEstablished, clientOpen };
}

/** ss's output, bounded in time (it throws if ss fails). */
function ss(args: string[], maxBuffer?: number): string {
  const bound = maxBuffer ? { maxBuffer } : {};
  return execFileSync('ss', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'], ...bound });
}

function ssEstablished(port: number): number | null {
  try {
    // The healthy client's connection is not an attacker's.
    const out = ss(['-Htn', 'state', 'established', `( sport = :${port} and not dst ${HEALTHY_ADDR} )`]);
    return out.split('\n').filter((l) => l.trim()).length;
  } catch {
    return null;
  }
}

/** Client sockets to `port` as ss -tmi sees them: receive buffer, receive MSS, by "ip:port". */
interface SocketMem {
  rb: number | undefined;
  rcvmss: number | undefined;
  ssthresh: number | undefined;
}
function ssClientMem(port: number): Map<string, SocketMem> {
  const map = new Map<string, SocketMem>();
  let out = '';
  try {
    out = ss(['-Htmi', 'state', 'established', `( dport = :${port} )`]);
  } catch {
    return map;
  }
  let key: string | null = null;
  for (const line of out.split('\n')) {
    if (!/^\s/.test(line)) {
      key = line.trim().split(/\s+/)[2] ?? null;
      continue;
    }
    if (!key) continue;
    const num = (re: RegExp): number | undefined => {
      const m = re.exec(line);
      return m ? Number(m[1]) : undefined;
    };
    map.set(key, { rb: num(/rb(\d+)/), rcvmss: num(/rcvmss:(\d+)/), ssthresh: num(/rcv_ssthresh:(\d+)/) });
  }
  return map;
}

/** Server sockets on `port`: bytes the client has acknowledged, by the client's "ip:port". */
function ssServerAcked(port: number): Map<string, number> {
  const map = new Map<string, number>();
  let out = '';
  try {
    out = ss(['-Htni', 'state', 'established', `( sport = :${port} and not dst ${HEALTHY_ADDR} )`], 64 * MiB);
  } catch {
    return map;
  }
  let key: string | null = null;
  for (const line of out.split('\n')) {
    if (!/^\s/.test(line)) key = line.trim().split(/\s+/)[3] ?? null;
    else if (key) {
      const m = /bytes_acked:(\d+)/.exec(line);
      if (m) map.set(key, Number(m[1]));
    }
  }
  return map;
}

function fdCount(pid: number): number | null {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * KiB : null;
  } catch {
    return null;
  }
}

function tcpMemBytes(): number | null {
  try {
    const m = /^TCP:.* mem (\d+)/m.exec(fs.readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? Number(m[1]) * 4096 : null;
  } catch {
    return null;
  }
}

/** Samples the server's RSS and the kernel's TCP memory every 100 ms until stopped. */
function sampler(pid: number): { stop(): { rss: number; tcpMem: number; before: number | null } } {
  const before = rssOf(pid);
  let rss = before ?? 0;
  let tcpMem = tcpMemBytes() ?? 0;
  const t = setInterval(() => {
    rss = Math.max(rss, rssOf(pid) ?? 0);
    tcpMem = Math.max(tcpMem, tcpMemBytes() ?? 0);
  }, 100);
  return {
    stop() {
      clearInterval(t);
      return { rss, tcpMem, before };
    },
  };
}

/**
 * Polls /proc/net/tcp every 250 ms and stamps kernelGoneAt on each tracked connection whose
 * client socket has left ESTABLISHED/CLOSE_WAIT (a reset, or a FIN we answered).
 */
function kernelWatch(port: number, conns: Conn[]): { tick(): Promise<void>; stop(): void } {
  const tick = () => {
    const table = tcpTable(port);
    if (!table) return;
    const t = now();
    // A socket counts as gone after two reads in a row without it: one read of a big table
    // that changes meanwhile can skip an entry.
    for (const c of conns) {
      if (!c.key || c.kernelGoneAt !== undefined || c.ourClose) continue;
      if (table.clientOpen.has(c.key)) c.firstMissAt = undefined;
      else if (c.firstMissAt === undefined) c.firstMissAt = t;
      else c.kernelGoneAt = c.firstMissAt;
    }
  };
  const timer = setInterval(tick, 250);
  return {
    tick: async () => {
      tick();
      await sleep(100);
      tick();
    },
    stop() {
      clearInterval(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The server under attack

function makeSparse(file: string, size: number): void {
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
}

/** An access record from the server's JSON log, as far as the table reads it. */
interface AccessLine {
  outcome: string;
  path: string;
  bytesSent: number;
  durationMs: number;
  seenAt: number;
}
interface Server {
  child: ChildProcess;
  pid: number;
  port: number;
  access: AccessLine[];
  stderr: string[];
  exited: boolean;
}

async function startServer(): Promise<Server> {
  if (!fs.existsSync(path.resolve(path.dirname(BIN), '../dist/main.js'))) die('bootserve is not built: run npm run build');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bootserve-attack-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Started as root, bootserve serves as nobody: the folder must be readable by others (mkdtemp makes it 0700).
  fs.chmodSync(dir, 0o755);
  // Sparse: reading holes costs no disk, so the figures are about the network path.
  makeSparse(path.join(dir, 'big-64m.img'), 64 * MiB);
  makeSparse(path.join(dir, 'healthy.img'), CONF.healthySize);
  const flags = serverFlags();
  const args = [BIN, dir, '--host', '127.0.0.1', '--port', '0', '--log-format', 'json', '--no-boot-menu', ...flags];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
  const server: Server = { child, pid: child.pid ?? 0, port: 0, access: [], stderr: [], exited: false };
  child.on('exit', (code, sig) => {
    server.exited = true;
    if (cleaned) return;
    process.stderr.write(`attack: the server exited (${code ?? sig}); its last words:\n${server.stderr.slice(-10).join('\n')}\n`);
  });
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    server.stderr.push(l);
    if (server.stderr.length > 50) server.stderr.shift();
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not say where it listens within 10 s')), 10_000);
    child.on('exit', () => reject(new Error(`the server exited at start: ${server.stderr.join(' | ')}`)));
    const keep = opts.serverLog ? fs.createWriteStream(opts.serverLog, { flags: 'a' }) : null;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      keep?.write(line + '\n');
      let rec: Partial<AccessLine> & { message?: unknown };
      try {
        rec = JSON.parse(line) as Partial<AccessLine> & { message?: unknown };
      } catch {
        return;
      }
      if (rec.outcome) server.access.push({ ...(rec as AccessLine), seenAt: now() });
      const m = typeof rec.message === 'string' && /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(rec.message);
      if (m) {
        clearTimeout(timer);
        server.port = Number(m[1]);
        resolve();
      }
    });
  });
  await ready;
  return server;
}

/** Wait (bounded) until the server holds no established connection, so scenarios do not overlap. */
async function settle(server: Server, maxMs = 20_000): Promise<boolean> {
  const until = now() + maxMs;
  while (now() < until) {
    const t = tcpTable(server.port);
    if (!t || (t.serverEstablished === 0 && t.clientOpen.size === 0)) return true;
    await sleep(250);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The healthy client: a download in a process of its own, so the attackers' event loop does
// not slow it down, from an address of its own.

/** What a healthy download measured (printed as JSON by the --_download helper process). */
interface Download {
  bytes: number;
  ms: number;
  status?: number;
  error?: string | undefined;
  bytesPerSec: number;
}

function healthyDownload(server: Server): Promise<Download> {
  const limitMs = 180_000;
  return new Promise((resolve) => {
    const url = `http://127.0.0.1:${server.port}/healthy.img`;
    const args = [...process.execArgv, SELF, '--_download', url, HEALTHY_ADDR, String(limitMs)];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out) as Download);
      } catch {
        resolve({ error: 'no result', bytes: 0, ms: 0, bytesPerSec: 0 });
      }
    });
  });
}

function runDownload({ url, local, limitMs }: { url: string; local: string; limitMs: number }): void {
  const t0 = now();
  let bytes = 0;
  let status = 0;
  let finished = false;
  const done = (error?: string): void => {
    if (finished) return;
    finished = true;
    const ms = now() - t0;
    process.stdout.write(JSON.stringify({ bytes, ms, status, error, bytesPerSec: ms > 0 ? (bytes / ms) * 1000 : 0 }) + '\n');
    process.exit(0);
  };
  setTimeout(() => done('timeout'), limitMs);
  const req = http.get(url, { localAddress: local, agent: false, headers: { 'user-agent': 'attack/healthy' } }, (res) => {
    status = res.statusCode ?? 0;
    const due = Number(res.headers['content-length']);
    res.on('data', (c) => (bytes += c.length));
    res.on('end', () => done(bytes === due ? undefined : `short body ${bytes}/${due}`));
    res.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
  req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
}

// ---------------------------------------------------------------------------------------------
// Attack connections

function addresses(base: string, count: number, perAddr: number): string[] {
  const list: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 2 + Math.floor(i / perAddr);
    list.push(`${base}.${Math.floor(n / 250)}.${2 + (n % 250)}`);
  }
  return list;
}

/**
 * Open one connection from `local` and send `request` once connected (if given). paused: the
 * socket is never read. onread: Node reads into a fixed buffer (used for paced reading).
 */
interface ConnSpec {
  server: Server;
  local: string;
  request?: string;
  paused?: boolean;
  /** Reads into a fixed buffer (paced readers), counting into the connection's figures. */
  onread?: (c: Reading) => net.OnReadOpts;
  flowing?: boolean;
  pauseAfterHead?: boolean;
  rate?: number;
}
/** What a connection has read; paced readers also keep their byte budget here. */
interface Reading {
  bytes: number;
  head: string;
  /** Paced readers: the byte budget, the read size, and whether Node stopped reading for it. */
  tokens?: number;
  buf?: number;
  stopped?: boolean;
}
/** One attack connection and what happened to it, in performance.now() milliseconds. */
interface Conn extends Reading {
  local: string;
  rate: number | undefined;
  openedAt: number;
  sock: net.Socket;
  connected: Promise<boolean>;
  connectedAt?: number;
  requestAt?: number;
  /** Where /proc/net/tcp lists the client's end. */
  key?: string;
  errCode?: string;
  errAt?: number;
  endAt?: number;
  closedAt?: number;
  /** We closed it (after the scenario): its close is not a cut. */
  ourClose?: boolean;
  firstMissAt?: number | undefined;
  kernelGoneAt?: number;
  /** Slowloris: header bytes sent. */
  sent?: number;
  mem?: SocketMem | undefined;
  cut?: boolean;
}

function openConn({ server, local, request, paused = false, onread, flowing = false, pauseAfterHead = false, rate }: ConnSpec): Conn {
  const openedAt = now();
  const reading: Reading = { bytes: 0, head: '' };
  const o: net.TcpNetConnectOpts = { host: '127.0.0.1', port: server.port, localAddress: local };
  if (onread) o.onread = onread(reading);
  const sock = net.connect(o);
  const c: Conn = Object.assign(reading, { local, rate, openedAt, sock, connected: Promise.resolve(false) });
  liveSockets.add(sock);
  if (paused) sock.pause();
  if (flowing)
    sock.on('data', (d: Buffer) => {
      c.bytes += d.length;
      if (c.head.length < 64) c.head += d.subarray(0, 64).toString('latin1');
      if (pauseAfterHead) sock.pause();
    });
  c.connected = new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), 15_000);
    sock.on('connect', () => {
      clearTimeout(t);
      c.connectedAt = now();
      c.key = hexKey(sock.localAddress ?? '', sock.localPort ?? 0);
      if (request) {
        sock.write(request);
        c.requestAt = now();
      }
      resolve(true);
    });
    sock.on('close', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    c.errCode ??= e.code ?? e.message;
    c.errAt ??= now();
  });
  sock.on('end', () => (c.endAt ??= now()));
  sock.on('close', () => {
    c.closedAt ??= now();
    liveSockets.delete(sock);
  });
  return c;
}

/** Open `list` connections in batches, so the accept queue is not the thing we measure. */
async function openMany(specs: ConnSpec[], batch = 100): Promise<Conn[]> {
  const conns: Conn[] = [];
  for (let i = 0; i < specs.length; i += batch) {
    const chunk = specs.slice(i, i + batch).map(openConn);
    conns.push(...chunk);
    await Promise.all(chunk.map((c) => c.connected));
  }
  return conns;
}

function closeAll(conns: Conn[]): void {
  for (const c of conns) {
    c.ourClose = true;
    c.sock.destroy();
  }
}

const getRequest = (p: string, ua: string): string => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ${ua}\r\n\r\n`;

/** When the client learned of the cut: Node's close/error, or its kernel socket leaving the table. */
function cutAt(c: Conn): number | undefined {
  const times = [c.errAt, c.closedAt, c.kernelGoneAt].filter((t): t is number => t !== undefined && !(c.ourClose && t === c.closedAt));
  return times.length ? Math.min(...times) : undefined;
}
/** How long after `from` the connection was cut; undefined if it was not (or `from` never came). */
function cutAfter(c: Conn, from: number | undefined): number | undefined {
  const at = cutAt(c);
  return at === undefined || from === undefined ? undefined : at - from;
}

interface Stats {
  min: number;
  med: number;
  max: number;
  n: number;
}
function stats(values: (number | undefined | null)[]): Stats | null {
  const v = values.filter((x): x is number => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return { min: v[0] as number, med: v[Math.floor(v.length / 2)] as number, max: v[v.length - 1] as number, n: v.length };
}

const fmtS = (ms: number | undefined | null): string => (ms === undefined || ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);
const fmtStats = (s: Stats | null): string => (s ? `${fmtS(s.min)} / ${fmtS(s.med)} / ${fmtS(s.max)}` : '-');
const fmtMB = (b: number | null | undefined): string => (b === null || b === undefined ? '-' : `${(b / 1e6).toFixed(0)} MB`);
const fmtRate = (bps: number): string => `${(bps / 1e6).toFixed(0)} MB/s`;

interface Outcomes {
  counts: Record<string, number>;
  recs: AccessLine[];
  text: string;
}
function outcomes(server: Server, sinceIdx: number, pathPrefix: string): Outcomes {
  const counts: Record<string, number> = {};
  const recs = server.access.slice(sinceIdx).filter((r) => r.path.startsWith(pathPrefix));
  for (const r of recs) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  return { counts, recs, text: Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ') || 'none logged' };
}

// ---------------------------------------------------------------------------------------------
// The table

/** The no-attack download just before a scenario: its rate, or that it failed. */
type Pre = { bytesPerSec: number; error?: undefined } | { error: string };
/** scenario, metric, value, target, verdict; a healthy download's row keeps its figures for the ratio. */
type Row = [string, string, string, string, string] & { healthy?: { h: Download; pre: Pre | null } };
const rows: Row[] = [];
function row(scenario: string, metric: string, value: string | number, target = '', verdict = ''): void {
  rows.push([scenario, metric, String(value), target, verdict]);
}
const verdict = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS');

function printTable(): void {
  const head = ['scenario', 'metric', 'value', 'target', 'verdict'];
  const all: string[][] = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((cell, i) => cell.padEnd(w[i] ?? 0)).join('  ').trimEnd();
  const out = [line(head), w.map((n) => '-'.repeat(n)).join('  ')];
  let last = '';
  for (const r of rows) {
    out.push(line([r[0] === last ? '' : r[0], ...r.slice(1)]));
    last = r[0];
  }
  process.stdout.write(out.join('\n') + '\n');
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const healthyRuns: (Download & { label: string })[] = [];
const HEALTHY_SCENARIOS: readonly Scenario[] = ['never-read', 'slowloris', 'slow-readers', 'per-ip-cap'];
let currentPre: Pre | null = null;

/**
 * Two healthy downloads during an attack: one from its start (it overlaps the burst in which
 * the server fills every attacker's socket buffers) and one started LATE_MS in, once that
 * burst is over but before the stall window cuts the attackers.
 */
const LATE_MS = Math.min(4000, stallMs * 0.4);
interface HealthyPair {
  early: Download;
  late: Download;
  lateAt: number;
}
async function healthyPair(server: Server, attackStart: number): Promise<HealthyPair> {
  const early = await healthyDownload(server);
  await sleep(Math.max(0, attackStart + LATE_MS - now()));
  const lateAt = now() - attackStart;
  const late = await healthyDownload(server);
  return { early, late, lateAt };
}

async function withHealthy<T>(server: Server, fn: (hp: Promise<HealthyPair>) => Promise<T>): Promise<{ result: T; healthy: HealthyPair }> {
  const t = now();
  const hp = healthyPair(server, t);
  const result = await fn(hp);
  return { result, healthy: await hp };
}

/** 1000 connections ask for 64 MiB and never read a byte. */
async function neverRead(server: Server): Promise<void> {
  const name = `never-read x${CONF.conns}`;
  const since = server.access.length;
  const addrs = addresses('127.1', CONF.conns, CONF.perAddr);
  const s = sampler(server.pid);
  const specs = addrs.map((local) => ({ server, local, paused: true, request: getRequest('/big-64m.img', 'attack/never-read') }));
  const t0 = now();
  const conns = await openMany(specs);
  const lastRequest = Math.max(...conns.map((c) => c.requestAt ?? 0));
  const watch = kernelWatch(server.port, conns);
  const dl = healthyPair(server, lastRequest);
  // The checkpoint: stall window + 2 s after the last request went out.
  await sleep(Math.max(0, lastRequest + stallMs / 2 - now()));
  const ackedHalf = ssServerAcked(server.port);
  await sleep(Math.max(0, lastRequest + stallMs + 2000 - now()));
  const checkAt = now();
  const ackedCheck = ssServerAcked(server.port);
  await watch.tick();
  const clientOpen = conns.filter((c) => c.requestAt && cutAt(c) === undefined).length;
  const ss = ssEstablished(server.port);
  const fds = fdCount(server.pid);
  const notConnected = conns.filter((c) => !c.requestAt).length;
  // Keep watching (bounded) until the last one is cut, then let Node see the resets: resume reading.
  const extraUntil = lastRequest + stallMs * 3 + 10_000;
  while (now() < extraUntil && conns.some((c) => c.requestAt && cutAt(c) === undefined)) {
    await sleep(250);
    await watch.tick();
  }
  watch.stop();
  const watchedUntil = now();
  const stillOpenLater = conns.filter((c) => c.requestAt && cutAt(c) === undefined).length;
  for (const c of conns) if (c.closedAt === undefined) c.sock.on('data', (d) => (c.bytes += d.length)).resume();
  await sleep(3000);
  const appOpen = conns.filter((c) => c.requestAt && c.closedAt === undefined && c.errAt === undefined).length;
  const appErr: Record<string, number> = {};
  for (const c of conns) {
    const how = c.errCode ?? (c.endAt !== undefined ? 'EOF' : c.closedAt !== undefined ? 'close' : undefined);
    if (how) appErr[how] = (appErr[how] ?? 0) + 1;
  }
  const drained = stats(conns.map((c) => c.bytes));
  closeAll(conns);
  const h = await dl;
  const { rss, tcpMem, before } = s.stop();
  const cuts = conns.map((c) => (c.requestAt ? cutAfter(c, c.requestAt) : undefined));
  const lastCut = Math.max(...conns.map((c) => cutAt(c) ?? 0));
  const log = outcomes(server, since, '/big-64m.img');
  const stalledDur = stats(log.recs.filter((r) => r.outcome === 'stalled').map((r) => r.durationMs));

  row(name, `client-side open at stall+2s (${fmtS(checkAt - lastRequest)} after last request)`, clientOpen, '0', verdict(clientOpen === 0));
  row(name, 'server-side established (ss sport) at stall+2s', ss ?? 'ss failed', '0', ss === null ? 'n/a' : verdict(ss === 0));
  row(name, 'server open fds at stall+2s', fds ?? '-');
  // Did the survivors' clients acknowledge anything between stall/2 and the checkpoint? (They
  // never read: any growth is the client kernel taking bytes on its own.)
  const survivors = [...ackedCheck.keys()].filter((k) => ackedHalf.has(k));
  const ackedMore = (k: string): number => (ackedCheck.get(k) ?? 0) - (ackedHalf.get(k) ?? 0);
  const grew = survivors.filter((k) => ackedMore(k) > 0);
  const growth = stats(grew.map(ackedMore));
  const grown = growth ? ` (med +${(growth.med / KiB).toFixed(0)} KB)` : '';
  row(name, `server sockets open at stall+2s whose client acked more since stall/2`,
    survivors.length ? `${grew.length} of ${survivors.length}${grown}` : 'none open');
  if (stillOpenLater) row(name, `client-side still open ${fmtS(watchedUntil - lastRequest)} after last request`, stillOpenLater);
  const saw = Object.entries(appErr).map(([k, v]) => `${k} ${v}`).join(', ') || 'nothing';
  row(name, 'app-level (Node) open after resuming reads for 3s',
    `${appOpen}  (saw: ${saw}; read first: med ${drained ? (drained.med / KiB).toFixed(0) : '-'} KB)`);
  const perConn = before ? ((rss - before) / CONF.conns / KiB).toFixed(0) : '?';
  row(name, `peak server RSS (${fmtMB(before)} before; ~${perConn} KB per connection)`, fmtMB(rss), '< 200 MB', verdict(rss < 200e6));
  row(name, 'peak kernel TCP memory (all sockets, both ends)', fmtMB(tcpMem));
  row(name, 'cut after its request, client view (min/med/max)', fmtStats(stats(cuts)));
  row(name, 'cut after transfer start, server log (min/med/max)', fmtStats(stalledDur));
  row(name, 'time to last cut (after the last request)', lastCut ? fmtS(lastCut - lastRequest) : 'none cut');
  row(name, 'ramp: all requests sent in', fmtS(lastRequest - t0));
  if (notConnected) row(name, 'connections that never got their request out', notConnected);
  row(name, 'server log outcomes', log.text);
  healthyRow(name, h);
}

/** 1000 connections that send a header byte a second and never finish the headers. */
async function slowloris(server: Server): Promise<void> {
  const name = `slowloris x${CONF.conns}`;
  const addrs = addresses('127.2', CONF.conns, CONF.perAddr);
  const s = sampler(server.pid);
  const specs: ConnSpec[] = addrs.map((local) => ({ server, local, flowing: true }));
  const t0 = now();
  const conns = await openMany(specs);
  const lastConnect = Math.max(...conns.map((c) => c.connectedAt ?? 0));
  // An endless header: request line, then header lines of 40 bytes, a byte at a time.
  const stream = (i: number): string => {
    const pre = 'GET /big-64m.img HTTP/1.1\r\nHost: 127.0.0.1\r\n';
    if (i < pre.length) return pre.charAt(i);
    const k = (i - pre.length) % 40;
    return k < 3 ? 'X-a'.charAt(k) : k === 3 ? ':' : k === 38 ? '\r' : k === 39 ? '\n' : 'a';
  };
  let tick = 0;
  const ticker = setInterval(() => {
    // Ten ticks a second, each feeding a tenth of the sockets: a byte per socket per second.
    const slot = tick++ % 10;
    for (let i = slot; i < conns.length; i += 10) {
      const c = conns[i];
      if (c === undefined || !c.connectedAt || c.closedAt !== undefined || c.errAt !== undefined || !c.sock.writable) continue;
      c.sent = (c.sent ?? 0) + 1;
      c.sock.write(stream(c.sent - 1));
    }
  }, 100);
  const dl = healthyPair(server, lastConnect);
  await sleep(Math.max(0, lastConnect + headerMs + 2000 - now()));
  const checkAt = now();
  const open = conns.filter((c) => c.connectedAt && c.closedAt === undefined && c.errAt === undefined).length;
  const ss = ssEstablished(server.port);
  // Bounded wait for stragglers (Node checks header deadlines on an interval).
  const until = now() + Math.max(5000, headerMs);
  while (now() < until && conns.some((c) => c.connectedAt && c.closedAt === undefined && c.errAt === undefined)) await sleep(250);
  clearInterval(ticker);
  const openLater = conns.filter((c) => c.connectedAt && c.closedAt === undefined && c.errAt === undefined).length;
  const got408 = conns.filter((c) => c.head.startsWith('HTTP/1.1 408')).length;
  const gotOther = conns.filter((c) => c.head && !c.head.startsWith('HTTP/1.1 408')).map((c) => c.head.slice(0, 12));
  const errs: Record<string, number> = {};
  for (const c of conns) if (c.errCode) errs[c.errCode] = (errs[c.errCode] ?? 0) + 1;
  const cuts = stats(conns.map((c) => (c.connectedAt ? cutAfter(c, c.connectedAt) : undefined)));
  const sent = stats(conns.map((c) => c.sent ?? 0));
  closeAll(conns);
  const h = await dl;
  const { rss, before } = s.stop();
  row(name, `open at header-timeout+2s (${fmtS(checkAt - lastConnect)} after last connect)`, open, '0', verdict(open === 0));
  row(name, 'server-side established (ss sport) then', ss ?? 'ss failed', '0', ss === null ? 'n/a' : verdict(ss === 0));
  if (openLater) row(name, `still open ${fmtS(until - lastConnect)} after last connect`, openLater);
  row(name, 'cut after connect (min/med/max)', fmtStats(cuts));
  const other = gotOther.length ? `; other: ${[...new Set(gotOther)].join(', ')}` : '';
  const errors = Object.keys(errs).length ? `; errors: ${Object.entries(errs).map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
  row(name, 'answered 408 before close', `${got408}${other}${errors}`);
  row(name, 'header bytes sent per connection (min/med/max)', sent ? `${sent.min} / ${sent.med} / ${sent.max}` : '-');
  row(name, 'ramp: all connected in', fmtS(lastConnect - t0));
  row(name, `peak server RSS (${fmtMB(before)} before)`, fmtMB(rss));
  healthyRow(name, h);
}

/**
 * A reader that takes `rate` bytes a second from its kernel socket, in reads of at most a
 * tenth of a second's worth: Node reads into one small fixed buffer (onread), and the socket is
 * paused whenever the budget is spent and resumed by a shared 100 ms ticker. (A paused stream
 * with read(n) would pull 16-64 KB from the kernel at a time and add its own coarseness.)
 */
function pacedSpecs(server: Server, addrs: string[], rate: number, ua: string): ConnSpec[] {
  const buf = Math.max(64, Math.min(8 * KiB, Math.floor(rate / 10)));
  return addrs.map((local) => ({
    server,
    local,
    rate,
    request: getRequest('/big-64m.img', ua),
    onread: (c) => {
      c.tokens = 0;
      c.buf = buf;
      return {
        buffer: Buffer.alloc(buf),
        callback: (n: number, b: Uint8Array): boolean => {
          c.bytes += n;
          c.tokens = (c.tokens ?? 0) - n;
          if (c.head.length < 16) c.head += Buffer.from(b.buffer, b.byteOffset, Math.min(n, 16)).toString('latin1');
          if (c.tokens >= buf) return true;
          c.stopped = true; // Node stops reading; the pacer resumes
          return false;
        },
      };
    },
  }));
}

function memText(conns: Conn[]): string {
  const rb = stats(conns.map((c) => c.mem?.rb));
  const mss = stats(conns.map((c) => c.mem?.rcvmss));
  const th = stats(conns.map((c) => c.mem?.ssthresh));
  const k = (s: Stats | null): string =>
    s ? (s.min === s.max ? `${Math.round(s.min / KiB)}` : `${Math.round(s.min / KiB)}-${Math.round(s.max / KiB)}`) : '?';
  return rb ? `rcvbuf ${k(rb)} KB, rcv_ssthresh ${k(th)} KB, rcvmss ${k(mss)} KB` : 'ss gave nothing';
}

function pacer(conns: Conn[]): { stop(): void } {
  let last = now();
  const t = setInterval(() => {
    const t1 = now();
    const dt = (t1 - last) / 1000;
    last = t1;
    for (const c of conns) {
      if (!c.connectedAt || c.closedAt !== undefined) continue;
      // Budget at most 0.2 s ahead, so a pause is never made up for with a burst.
      const rate = c.rate ?? 0;
      const buf = c.buf ?? 0;
      c.tokens = Math.min((c.tokens ?? 0) + rate * dt, Math.max(buf, rate * 0.2));
      if (c.tokens >= buf && c.stopped) {
        c.stopped = false;
        c.sock.resume();
      }
    }
  }, 100);
  return { stop: () => clearInterval(t) };
}

async function pacedRun(server: Server, specs: ConnSpec[], runMs: number): Promise<{ conns: Conn[]; runMs: number }> {
  const conns = await openMany(specs);
  const p = pacer(conns);
  const watch = kernelWatch(server.port, conns);
  const start = Math.max(...conns.map((c) => c.requestAt ?? 0));
  // A look at the readers' receive buffers a few seconds in: what decides the window steps.
  await sleep(Math.max(0, start + Math.min(5000, runMs / 3) - now()));
  const mem = ssClientMem(server.port);
  for (const c of conns) c.mem = mem.get(`${c.local}:${c.sock.localPort}`);
  await sleep(Math.max(0, start + runMs - now()));
  await watch.tick();
  watch.stop();
  p.stop();
  const end = now();
  for (const c of conns) c.cut = c.requestAt !== undefined && (cutAt(c) ?? Infinity) <= end;
  if (process.env.ATTACK_DEBUG)
    for (const c of conns)
      if (c.cut && (cutAfter(c, c.requestAt) ?? Infinity) < stallMs * 0.9)
        process.stderr.write(`early cut ${c.local}:${c.sock.localPort} err=${c.errCode}@${since(c.errAt, c.requestAt)} `
          + `close@${since(c.closedAt, c.requestAt)} kgone@${since(c.kernelGoneAt, c.requestAt)} bytes=${c.bytes}\n`);
  closeAll(conns);
  return { conns, runMs: end - start };
}

/** 200 readers at 2 KB/s. */
/** For debugging lines: ms from `from` to `t`, or "undefined" as the old untyped script printed. */
const since = (t: number | undefined, from: number | undefined): string => (t && from !== undefined ? (t - from).toFixed(0) : String(t));

async function slowReaders(server: Server): Promise<void> {
  const name = `slow-readers x${CONF.slowReaders} @${CONF.slowRate / KiB}KB/s`;
  const since = server.access.length;
  const s = sampler(server.pid);
  const specs = pacedSpecs(server, addresses('127.3', CONF.slowReaders, CONF.perAddr), CONF.slowRate, 'attack/slow-reader');
  const { result, healthy } = await withHealthy(server, () => pacedRun(server, specs, CONF.slowRunMs));
  const { rss, before } = s.stop();
  const cut = result.conns.filter((c) => c.cut);
  const cutTimes = stats(cut.map((c) => cutAfter(c, c.requestAt)));
  const log = outcomes(server, since, '/big-64m.img');
  row(name, `cut within ${fmtS(result.runMs)}`, `${cut.length} of ${result.conns.length}`, 'report', '');
  row(name, 'cut after its request (min/med/max)', fmtStats(cutTimes));
  const medKB = (s: Stats | null): string => (s ? `${(s.med / KiB).toFixed(0)} KB` : '-');
  row(name, 'bytes read by a reader before its cut (med)', medKB(stats(cut.map((c) => c.bytes))));
  row(name, 'bytes the server sent before the cut (med, log)', medKB(stats(log.recs.map((r) => r.bytesSent))));
  row(name, 'server log outcomes', log.text);
  row(name, 'readers\' sockets at 5s (ss -tmi)', memText(result.conns));
  row(name, `peak server RSS (${fmtMB(before)} before)`, fmtMB(rss));
  healthyRow(name, healthy);
}

/** Everything from one address: the per-address cap answers 503 beyond its count. */
async function perIpCap(server: Server): Promise<void> {
  const name = `per-ip-cap x${CONF.conns} from 127.4.0.2`;
  const request = getRequest('/big-64m.img', 'attack/cap');
  const specs = Array.from({ length: CONF.conns }, (): ConnSpec => ({
    server, local: '127.4.0.2', flowing: true, pauseAfterHead: true, request,
  }));
  const { result: conns, healthy } = await withHealthy(server, async (hp) => {
    const cs = await openMany(specs);
    // Read only what is needed to see each status line, then stop reading.
    const until = now() + 3000;
    while (now() < until && cs.some((c) => !c.head && c.errAt === undefined && c.closedAt === undefined)) await sleep(100);
    for (const c of cs) c.sock.pause();
    await hp; // hold the admitted connections while the healthy client downloads
    return cs;
  });
  const ok = conns.filter((c) => c.head.startsWith('HTTP/1.1 200')).length;
  const busy = conns.filter((c) => c.head.startsWith('HTTP/1.1 503')).length;
  const retryAfter = conns.filter((c) => c.head.startsWith('HTTP/1.1 503') && /\r\nRetry-After: \d+/i.test(c.head)).length;
  const refused = conns.filter((c) => !c.connectedAt).length;
  const other = conns.length - ok - busy - refused;
  closeAll(conns);
  row(name, 'answered 200 (admitted)', ok, `${Math.min(PER_IP_CAP, CONF.conns)}`, verdict(ok === Math.min(PER_IP_CAP, CONF.conns)));
  const over = Math.max(0, CONF.conns - PER_IP_CAP);
  row(name, 'answered 503', `${busy} (with Retry-After: ${retryAfter})`, `${over}`, verdict(busy === over));
  row(name, 'refused / no connection', refused);
  if (other) row(name, 'other (reset or no answer in 3s)', other);
  healthyRow(name, healthy);
}

/** Step down the reading rate: the slowest rate whose readers (and all faster ones) are never cut. */
interface RateResult {
  runMs: number;
  mem: string;
  rmem: string;
  perRate: { rate: number; readers: number; cut: number; firstCut: number | null; status: string }[];
  error?: undefined;
}

async function rateSearch(server: Server): Promise<RateResult> {
  const specs: ConnSpec[] = [];
  CONF.rates.forEach((rate, i) => {
    const addrs = Array.from({ length: CONF.readersPerRate }, (_, k) => `127.5.${i}.${2 + k}`);
    specs.push(...pacedSpecs(server, addrs, rate, `attack/rate-${rate}`));
  });
  const s = sampler(server.pid);
  const { conns, runMs } = await pacedRun(server, specs, CONF.rateRunMs);
  s.stop();
  let rmem = '?';
  try {
    rmem = fs.readFileSync('/proc/sys/net/ipv4/tcp_rmem', 'utf8').trim().split(/\s+/).join(' ');
  } catch {
    /* not readable */
  }
  return {
    runMs,
    mem: memText(conns),
    rmem,
    perRate: CONF.rates.map((rate) => {
      const cs = conns.filter((c) => c.rate === rate);
      const cut = cs.filter((c) => c.cut);
      const firstCut = cut.length ? Math.min(...cut.map((c) => cutAfter(c, c.requestAt) ?? Infinity)) : null;
      return { rate, readers: cs.length, cut: cut.length, firstCut, status: cs.map((c) => c.head.slice(9, 12)).join('/') };
    }),
  };
}

function rateRows(name: string, res: RateResult, targetKB: number): void {
  let slowest: number | null = null;
  for (const r of [...res.perRate].sort((a, b) => b.rate - a.rate)) {
    if (r.cut) break;
    slowest = r.rate;
  }
  const per = res.perRate.map((r) => `${r.rate / KiB}:${r.cut ? `CUT@${fmtS(r.firstCut)}` : 'ok'}`).join(' ');
  row(name, `per rate KB/s (${CONF.readersPerRate} reader(s) each, ${fmtS(res.runMs)})`, per);
  row(name, `readers' sockets at 5s (ss -tmi); tcp_rmem ${res.rmem}`, res.mem);
  const ok = slowest !== null && slowest <= targetKB * KiB;
  const value = slowest === null ? 'none' : `${slowest / KiB} KB/s`;
  row(name, `slowest rate never cut (stall ${fmtS(stallMs)})`, value, `<= ${targetKB} KB/s`, verdict(ok));
}

async function rateSearchMtu1500(): Promise<void> {
  const name = 'rates, netns lo mtu 1500';
  // tsx's loader (in execArgv) runs the inner copy too.
  const argv = [process.execPath, ...process.execArgv, SELF, '--_inner', 'rates', ...(Q ? ['--quick'] : []), ...serverFlags()];
  const inner = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `ip link set lo up mtu 1500 && exec ${inner}`;
  const res = await new Promise<RateResult | { error: string }>((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn('unshare', ['-n', 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      return resolve({ error: e instanceof Error ? e.message : String(e) });
    }
    onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
    const killer = setTimeout(() => child.kill('SIGKILL'), CONF.rateRunMs + 60_000);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => resolve({ error: e.message }));
    child.on('exit', (code) => {
      clearTimeout(killer);
      const m = /^RESULT (.*)$/m.exec(out);
      if (m) resolve(JSON.parse(m[1] ?? '') as RateResult);
      else resolve({ error: `unshare/ip failed (exit ${code}): ${err.trim().split('\n').slice(-2).join(' | ')}` });
    });
  });
  if (res.error !== undefined) {
    row(name, 'skipped', res.error, '<= 2 KB/s', 'n/a');
    return;
  }
  rateRows(name, res, 2);
}

function healthyRow(name: string, pair: HealthyPair): void {
  const runs: [Download, string][] = [
    [pair.early, 'healthy download from attack start'],
    [pair.late, `healthy download started ${fmtS(pair.lateAt)} in`],
  ];
  for (const [h, what] of runs) {
    if (h.error) row(name, what, `FAILED: ${h.error} (${(h.bytes / MiB).toFixed(0)} MiB)`, '>= 0.8', 'MISS');
    else {
      row(name, what, `${fmtRate(h.bytesPerSec)} in ${fmtS(h.ms)}`, '', '');
      const last = rows[rows.length - 1];
      if (last) last.healthy = { h, pre: currentPre };
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** The server flags given to this script, passed on to bootserve. */
function serverFlags(): string[] {
  return SERVER_FLAGS.flatMap((f) => {
    const v = opts.server[f];
    return v !== undefined ? [`--${f}`, v] : [];
  });
}

async function main(): Promise<void> {
  if (opts.internal?.kind === 'download') return runDownload(opts.internal);
  const overallMs = Q ? 6 * 60_000 : 20 * 60_000;
  setTimeout(() => {
    process.stderr.write(`attack: overall limit of ${overallMs / 60_000} min reached, giving up\n`);
    cleanupAll();
    process.exit(1);
  }, overallMs).unref();

  const server = await startServer();

  if (opts.internal?.kind === 'inner') {
    const res = await rateSearch(server);
    process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
    cleanupAll();
    process.exit(0);
  }

  const want = (n: Scenario): boolean => !opts.only || opts.only.includes(n);
  const needHealthy = HEALTHY_SCENARIOS.some(want);
  const fdLimit = execFileSync('bash', ['-c', 'ulimit -n']).toString().trim();
  process.stderr.write(`attack: bootserve pid ${server.pid} on 127.0.0.1:${server.port}, stall ${fmtS(stallMs)}, header ${fmtS(headerMs)}, `
    + `${CONF.conns} connections, fd limit ${fdLimit}\n`);

  if (needHealthy) await healthyDownload(server); // warm-up (JIT, page cache), not counted
  const steps: [Scenario, (srv: Server) => Promise<void>][] = [
    ['never-read', neverRead],
    ['slowloris', slowloris],
    ['slow-readers', slowReaders],
    ['per-ip-cap', perIpCap],
    ['rates', async (srv) => rateRows(`rates, loopback mtu ${loMtu()}`, await rateSearch(srv), 16)],
    ['rates-mtu1500', () => rateSearchMtu1500()],
  ];
  for (const [n, fn] of steps) {
    if (!want(n)) continue;
    if (server.exited) throw new Error('the server is gone; stopping');
    process.stderr.write(`attack: ${n}...\n`);
    if (!(await settle(server))) process.stderr.write('attack: warning: the previous scenario left server connections open\n');
    if (HEALTHY_SCENARIOS.includes(n)) {
      // The no-attack figure this scenario's healthy download is compared with, taken just before.
      const pres: Download[] = [];
      for (let i = 0; i < 2; i++) {
        const pre = await healthyDownload(server);
        pres.push(pre);
        healthyRuns.push({ label: 'baseline', ...pre });
      }
      const good = pres.filter((p) => !p.error);
      currentPre = good.length ? { bytesPerSec: good.reduce((a, p) => a + p.bytesPerSec, 0) / good.length } : { error: 'failed' };
    }
    await fn(server);
  }
  if (needHealthy) {
    await settle(server);
    healthyRuns.push({ label: 'baseline', ...(await healthyDownload(server)) });
    const base = healthyRuns.filter((r) => r.label === 'baseline' && !r.error).map((r) => r.bytesPerSec);
    const baseline = stats(base)?.med ?? 0;
    const what = `healthy ${(CONF.healthySize / MiB).toFixed(0)} MiB download, no attack: median (each)`;
    rows.unshift(['baseline', what, baseline ? `${fmtRate(baseline)} (${base.map(fmtRate).join(', ')})` : 'FAILED', '', '']);
    // Fill in the ratio next to each scenario's healthy row.
    for (const r of rows) {
      if (!r.healthy || !baseline) continue;
      const { h, pre } = r.healthy;
      // Against the no-attack download just before this scenario (drift on a shared machine
      // hits both alike); the ratio to the run's median is shown too.
      const ref = pre && pre.error === undefined ? pre.bytesPerSec : baseline;
      const ratio = h.bytesPerSec / ref;
      r[1] += ' / 2 just before';
      r[2] = `${ratio.toFixed(2)} (${fmtRate(h.bytesPerSec)} vs ${fmtRate(ref)}; vs median ${(h.bytesPerSec / baseline).toFixed(2)})`;
      r[3] = '>= 0.8';
      r[4] = verdict(ratio >= 0.8);
    }
  }
  printTable();
  cleanupAll();
  process.exit(0);
}

function loMtu(): string {
  try {
    return fs.readFileSync('/sys/class/net/lo/mtu', 'utf8').trim();
  } catch {
    return '?';
  }
}

main();
