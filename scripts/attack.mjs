#!/usr/bin/env node
// Attack a bootserve of our own on loopback and print one table. Plain Node, no dependencies.
// Run it through scripts/attack (which raises the descriptor limit); ATTACK.md says how to read
// the table. Every scenario is bounded in connections and time, and the server, its temp
// directory, child processes and sockets are torn down on exit, error or signal.
//
// Client-side "open" is read from the client's kernel sockets in /proc/net/tcp: a socket that
// never reads never hears about a reset from Node (libuv stops polling a paused socket), but its
// kernel socket leaves the table the moment the reset arrives. After the checkpoint the sockets
// are also resumed, so Node itself sees every reset (reported as "app-level").
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const BIN = path.resolve(path.dirname(SELF), '../bin/bootserve.js');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SERVER_FLAGS = ['stall-timeout', 'header-timeout', 'keepalive-timeout', 'max-connections', 'max-connections-per-ip'];
const SCENARIOS = ['never-read', 'slowloris', 'slow-readers', 'per-ip-cap', 'rates', 'rates-mtu1500'];
const HEALTHY_ADDR = '127.0.9.9';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function die(message) {
  process.stderr.write(`attack: ${message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Cleanup: whatever we start is registered here and undone on any way out.

const cleanups = [];
const liveSockets = new Set();
let cleaned = false;
function onCleanup(fn) {
  cleanups.push(fn);
}
function cleanupAll() {
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
  process.on(ev, (err) => {
    process.stderr.write(`attack: ${err instanceof Error ? err.stack : String(err)}\n`);
    cleanupAll();
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------------------------
// Arguments

function parseDuration(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!m) die(`invalid duration '${text}'`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']);
}

function parseArgs(argv) {
  const o = { quick: false, only: null, server: {}, internal: null, connections: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? (eq < 0 ? a.slice(2) : a.slice(2, eq)) : a;
    const inline = a.startsWith('--') && eq >= 0 ? a.slice(eq + 1) : undefined;
    const val = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) die(`--${name} needs a value`);
      return v;
    };
    if (name === 'quick') o.quick = true;
    else if (name === 'only') o.only = val().split(',');
    else if (name === 'connections') o.connections = Number(val());
    else if (name === 'server-log') o.serverLog = val();
    else if (SERVER_FLAGS.includes(name)) o.server[name] = val();
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
  for (const s of o.only ?? []) if (!SCENARIOS.includes(s)) die(`--only: unknown scenario '${s}' (${SCENARIOS.join(', ')})`);
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

/** "127.0.0.2", 40000 -> "0200007F:9C40", as /proc/net/tcp spells it on little-endian hosts. */
function hexKey(address, port) {
  let bytes = address.split('.').map(Number);
  if (os.endianness() === 'LE') bytes = bytes.reverse();
  return `${bytes.map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Server sockets established on `port`, and the set of client-side sockets still open to it. */
function tcpTable(port) {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const healthyHex = hexKey(HEALTHY_ADDR, 0).split(':')[0];
  let text = '';
  try {
    text = fs.readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return null;
  }
  let serverEstablished = 0;
  const clientOpen = new Set();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !f[1].includes(':')) continue;
    const st = f[3];
    if (f[1].endsWith(`:${portHex}`) && st === '01' && !f[2].startsWith(healthyHex)) serverEstablished++;
    // ESTABLISHED, or CLOSE_WAIT (the server sent FIN and we have not closed yet).
    else if (f[2].endsWith(`:${portHex}`) && (st === '01' || st === '08')) clientOpen.add(f[1]);
  }
  return { serverEstablished, clientOpen };
}

function ssEstablished(port) {
  try {
    // The healthy client's connection is not an attacker's.
    const out = execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} and not dst ${HEALTHY_ADDR} )`], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter((l) => l.trim()).length;
  } catch {
    return null;
  }
}

/** Client sockets to `port` as ss -tmi sees them: receive buffer, receive MSS, by "ip:port". */
function ssClientMem(port) {
  const map = new Map();
  let out = '';
  try {
    out = execFileSync('ss', ['-Htmi', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return map;
  }
  let key = null;
  for (const line of out.split('\n')) {
    if (!/^\s/.test(line)) {
      key = line.trim().split(/\s+/)[2] ?? null;
      continue;
    }
    if (!key) continue;
    const num = (re) => {
      const m = re.exec(line);
      return m ? Number(m[1]) : undefined;
    };
    map.set(key, { rb: num(/rb(\d+)/), rcvmss: num(/rcvmss:(\d+)/), ssthresh: num(/rcv_ssthresh:(\d+)/) });
  }
  return map;
}

/** Server sockets on `port`: bytes the client has acknowledged, by the client's "ip:port". */
function ssServerAcked(port) {
  const map = new Map();
  let out = '';
  try {
    out = execFileSync('ss', ['-Htni', 'state', 'established', `( sport = :${port} and not dst ${HEALTHY_ADDR} )`], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * MiB });
  } catch {
    return map;
  }
  let key = null;
  for (const line of out.split('\n')) {
    if (!/^\s/.test(line)) key = line.trim().split(/\s+/)[3] ?? null;
    else if (key) {
      const m = /bytes_acked:(\d+)/.exec(line);
      if (m) map.set(key, Number(m[1]));
    }
  }
  return map;
}

function fdCount(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * KiB : null;
  } catch {
    return null;
  }
}

function tcpMemBytes() {
  try {
    const m = /^TCP:.* mem (\d+)/m.exec(fs.readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? Number(m[1]) * 4096 : null;
  } catch {
    return null;
  }
}

/** Samples the server's RSS and the kernel's TCP memory every 100 ms until stopped. */
function sampler(pid) {
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
function kernelWatch(port, conns) {
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

function makeSparse(file, size) {
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
}

async function startServer() {
  if (!fs.existsSync(path.resolve(path.dirname(BIN), '../dist/main.js'))) die('bootserve is not built: run npm run build');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bootserve-attack-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Sparse: reading holes costs no disk, so the figures are about the network path.
  makeSparse(path.join(dir, 'big-64m.img'), 64 * MiB);
  makeSparse(path.join(dir, 'healthy.img'), CONF.healthySize);
  const flags = SERVER_FLAGS.flatMap((f) => (opts.server[f] !== undefined ? [`--${f}`, opts.server[f]] : []));
  const args = [BIN, dir, '--host', '127.0.0.1', '--port', '0', '--log-format', 'json', '--no-boot-menu', ...flags];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
  const server = { child, pid: child.pid, port: 0, access: [], stderr: [], exited: false };
  child.on('exit', (code, sig) => {
    server.exited = true;
    if (!cleaned) process.stderr.write(`attack: the server exited (${code ?? sig}); its last words:\n${server.stderr.slice(-10).join('\n')}\n`);
  });
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    server.stderr.push(l);
    if (server.stderr.length > 50) server.stderr.shift();
  });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not say where it listens within 10 s')), 10_000);
    child.on('exit', () => reject(new Error(`the server exited at start: ${server.stderr.join(' | ')}`)));
    const keep = opts.serverLog ? fs.createWriteStream(opts.serverLog, { flags: 'a' }) : null;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      keep?.write(line + '\n');
      let rec;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      if (rec.outcome) server.access.push({ ...rec, seenAt: now() });
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
async function settle(server, maxMs = 20_000) {
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

function healthyDownload(server) {
  const limitMs = 180_000;
  return new Promise((resolve) => {
    const url = `http://127.0.0.1:${server.port}/healthy.img`;
    const child = spawn(process.execPath, [SELF, '--_download', url, HEALTHY_ADDR, String(limitMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        resolve({ error: 'no result', bytes: 0, ms: 0 });
      }
    });
  });
}

function runDownload({ url, local, limitMs }) {
  const t0 = now();
  let bytes = 0;
  let status = 0;
  let finished = false;
  const done = (error) => {
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
    res.on('error', (e) => done(e.code ?? e.message));
  });
  req.on('error', (e) => done(e.code ?? e.message));
}

// ---------------------------------------------------------------------------------------------
// Attack connections

function addresses(base, count, perAddr) {
  const list = [];
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
function openConn({ server, local, request, paused = false, onread, flowing = false, pauseAfterHead = false, rate }) {
  const c = { local, rate, openedAt: now(), bytes: 0, head: '' };
  const o = { host: '127.0.0.1', port: server.port, localAddress: local };
  if (onread) o.onread = onread(c);
  const sock = net.connect(o);
  c.sock = sock;
  liveSockets.add(sock);
  if (paused) sock.pause();
  if (flowing)
    sock.on('data', (d) => {
      c.bytes += d.length;
      if (c.head.length < 64) c.head += d.subarray(0, 64).toString('latin1');
      if (pauseAfterHead) sock.pause();
    });
  c.connected = new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), 15_000);
    sock.on('connect', () => {
      clearTimeout(t);
      c.connectedAt = now();
      c.key = hexKey(sock.localAddress, sock.localPort);
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
  sock.on('error', (e) => {
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
async function openMany(specs, batch = 100) {
  const conns = [];
  for (let i = 0; i < specs.length; i += batch) {
    const chunk = specs.slice(i, i + batch).map(openConn);
    conns.push(...chunk);
    await Promise.all(chunk.map((c) => c.connected));
  }
  return conns;
}

function closeAll(conns) {
  for (const c of conns) {
    c.ourClose = true;
    c.sock.destroy();
  }
}

const getRequest = (p, ua) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ${ua}\r\n\r\n`;

/** When the client learned of the cut: Node's close/error, or its kernel socket leaving the table. */
function cutAt(c) {
  const times = [c.errAt, c.closedAt, c.kernelGoneAt].filter((t) => t !== undefined && !(c.ourClose && t === c.closedAt));
  return times.length ? Math.min(...times) : undefined;
}

function stats(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return { min: v[0], med: v[Math.floor(v.length / 2)], max: v[v.length - 1], n: v.length };
}

const fmtS = (ms) => (ms === undefined || ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);
const fmtStats = (s) => (s ? `${fmtS(s.min)} / ${fmtS(s.med)} / ${fmtS(s.max)}` : '-');
const fmtMB = (b) => (b === null || b === undefined ? '-' : `${(b / 1e6).toFixed(0)} MB`);
const fmtRate = (bps) => `${(bps / 1e6).toFixed(0)} MB/s`;

function outcomes(server, sinceIdx, pathPrefix) {
  const counts = {};
  const recs = server.access.slice(sinceIdx).filter((r) => r.path.startsWith(pathPrefix));
  for (const r of recs) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  return { counts, recs, text: Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ') || 'none logged' };
}

// ---------------------------------------------------------------------------------------------
// The table

const rows = [];
function row(scenario, metric, value, target = '', verdict = '') {
  rows.push([scenario, metric, String(value), target, verdict]);
}
const verdict = (ok) => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS');

function printTable() {
  const head = ['scenario', 'metric', 'value', 'target', 'verdict'];
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => cell.padEnd(w[i])).join('  ').trimEnd();
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

const healthyRuns = [];
const HEALTHY_SCENARIOS = ['never-read', 'slowloris', 'slow-readers', 'per-ip-cap'];
let currentPre = null;

/**
 * Two healthy downloads during an attack: one from its start (it overlaps the burst in which
 * the server fills every attacker's socket buffers) and one started LATE_MS in, once that
 * burst is over but before the stall window cuts the attackers.
 */
const LATE_MS = Math.min(4000, stallMs * 0.4);
async function healthyPair(server, attackStart) {
  const early = await healthyDownload(server);
  await sleep(Math.max(0, attackStart + LATE_MS - now()));
  const lateAt = now() - attackStart;
  const late = await healthyDownload(server);
  return { early, late, lateAt };
}

async function withHealthy(server, fn) {
  const t = now();
  const hp = healthyPair(server, t);
  const result = await fn(hp);
  return { result, healthy: await hp };
}

/** 1000 connections ask for 64 MiB and never read a byte. */
async function neverRead(server) {
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
  const appErr = {};
  for (const c of conns) {
    const how = c.errCode ?? (c.endAt !== undefined ? 'EOF' : c.closedAt !== undefined ? 'close' : undefined);
    if (how) appErr[how] = (appErr[how] ?? 0) + 1;
  }
  const drained = stats(conns.map((c) => c.bytes));
  closeAll(conns);
  const h = await dl;
  const { rss, tcpMem, before } = s.stop();
  const cuts = conns.map((c) => (cutAt(c) !== undefined && c.requestAt ? cutAt(c) - c.requestAt : undefined));
  const lastCut = Math.max(...conns.map((c) => cutAt(c) ?? 0));
  const log = outcomes(server, since, '/big-64m.img');
  const stalledDur = stats(log.recs.filter((r) => r.outcome === 'stalled').map((r) => r.durationMs));

  row(name, `client-side open at stall+2s (${fmtS(checkAt - lastRequest)} after last request)`, clientOpen, '0', verdict(clientOpen === 0));
  row(name, 'server-side established (ss sport) at stall+2s', ss ?? 'ss failed', '0', ss === null ? 'n/a' : verdict(ss === 0));
  row(name, 'server open fds at stall+2s', fds ?? '-');
  // Did the survivors' clients acknowledge anything between stall/2 and the checkpoint? (They
  // never read: any growth is the client kernel taking bytes on its own.)
  const survivors = [...ackedCheck.keys()].filter((k) => ackedHalf.has(k));
  const grew = survivors.filter((k) => ackedCheck.get(k) > ackedHalf.get(k));
  const growth = stats(grew.map((k) => ackedCheck.get(k) - ackedHalf.get(k)));
  row(name, `server sockets open at stall+2s whose client acked more since stall/2`, survivors.length ? `${grew.length} of ${survivors.length}${growth ? ` (med +${(growth.med / KiB).toFixed(0)} KB)` : ''}` : 'none open');
  if (stillOpenLater) row(name, `client-side still open ${fmtS(watchedUntil - lastRequest)} after last request`, stillOpenLater);
  row(name, 'app-level (Node) open after resuming reads for 3s', `${appOpen}  (saw: ${Object.entries(appErr).map(([k, v]) => `${k} ${v}`).join(', ') || 'nothing'}; read first: med ${drained ? (drained.med / KiB).toFixed(0) : '-'} KB)`);
  row(name, `peak server RSS (${fmtMB(before)} before; ~${before ? ((rss - before) / CONF.conns / KiB).toFixed(0) : '?'} KB per connection)`, fmtMB(rss), '< 200 MB', verdict(rss < 200e6));
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
async function slowloris(server) {
  const name = `slowloris x${CONF.conns}`;
  const addrs = addresses('127.2', CONF.conns, CONF.perAddr);
  const s = sampler(server.pid);
  const specs = addrs.map((local) => ({ server, local, flowing: true }));
  const t0 = now();
  const conns = await openMany(specs);
  const lastConnect = Math.max(...conns.map((c) => c.connectedAt ?? 0));
  // An endless header: request line, then header lines of 40 bytes, a byte at a time.
  const stream = (i) => {
    const pre = 'GET /big-64m.img HTTP/1.1\r\nHost: 127.0.0.1\r\n';
    if (i < pre.length) return pre[i];
    const k = (i - pre.length) % 40;
    return k < 3 ? 'X-a'[k] : k === 3 ? ':' : k === 38 ? '\r' : k === 39 ? '\n' : 'a';
  };
  let tick = 0;
  const ticker = setInterval(() => {
    // Ten ticks a second, each feeding a tenth of the sockets: a byte per socket per second.
    const slot = tick++ % 10;
    for (let i = slot; i < conns.length; i += 10) {
      const c = conns[i];
      if (!c.connectedAt || c.closedAt !== undefined || c.errAt !== undefined || !c.sock.writable) continue;
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
  const errs = {};
  for (const c of conns) if (c.errCode) errs[c.errCode] = (errs[c.errCode] ?? 0) + 1;
  const cuts = stats(conns.map((c) => (c.connectedAt && cutAt(c) !== undefined ? cutAt(c) - c.connectedAt : undefined)));
  const sent = stats(conns.map((c) => c.sent ?? 0));
  closeAll(conns);
  const h = await dl;
  const { rss, before } = s.stop();
  row(name, `open at header-timeout+2s (${fmtS(checkAt - lastConnect)} after last connect)`, open, '0', verdict(open === 0));
  row(name, 'server-side established (ss sport) then', ss ?? 'ss failed', '0', ss === null ? 'n/a' : verdict(ss === 0));
  if (openLater) row(name, `still open ${fmtS(until - lastConnect)} after last connect`, openLater);
  row(name, 'cut after connect (min/med/max)', fmtStats(cuts));
  row(name, 'answered 408 before close', `${got408}${gotOther.length ? `; other: ${[...new Set(gotOther)].join(', ')}` : ''}${Object.keys(errs).length ? `; errors: ${Object.entries(errs).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`);
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
function pacedSpecs(server, addrs, rate, ua) {
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
        callback: (n, b) => {
          c.bytes += n;
          c.tokens -= n;
          if (c.head.length < 16) c.head += b.subarray(0, Math.min(n, 16)).toString('latin1');
          if (c.tokens >= buf) return true;
          c.stopped = true; // Node stops reading; the pacer resumes
          return false;
        },
      };
    },
  }));
}

function memText(conns) {
  const rb = stats(conns.map((c) => c.mem?.rb));
  const mss = stats(conns.map((c) => c.mem?.rcvmss));
  const th = stats(conns.map((c) => c.mem?.ssthresh));
  const k = (s) => (s ? (s.min === s.max ? `${Math.round(s.min / KiB)}` : `${Math.round(s.min / KiB)}-${Math.round(s.max / KiB)}`) : '?');
  return rb ? `rcvbuf ${k(rb)} KB, rcv_ssthresh ${k(th)} KB, rcvmss ${k(mss)} KB` : 'ss gave nothing';
}

function pacer(conns) {
  let last = now();
  const t = setInterval(() => {
    const t1 = now();
    const dt = (t1 - last) / 1000;
    last = t1;
    for (const c of conns) {
      if (!c.connectedAt || c.closedAt !== undefined) continue;
      // Budget at most 0.2 s ahead, so a pause is never made up for with a burst.
      c.tokens = Math.min(c.tokens + c.rate * dt, Math.max(c.buf, c.rate * 0.2));
      if (c.tokens >= c.buf && c.stopped) {
        c.stopped = false;
        c.sock.resume();
      }
    }
  }, 100);
  return { stop: () => clearInterval(t) };
}

async function pacedRun(server, specs, runMs) {
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
  for (const c of conns) c.cut = c.requestAt !== undefined && cutAt(c) !== undefined && cutAt(c) <= end;
  if (process.env.ATTACK_DEBUG)
    for (const c of conns)
      if (c.cut && cutAt(c) - c.requestAt < stallMs * 0.9)
        process.stderr.write(`early cut ${c.local}:${c.sock.localPort} err=${c.errCode}@${c.errAt && (c.errAt - c.requestAt).toFixed(0)} close@${c.closedAt && (c.closedAt - c.requestAt).toFixed(0)} kgone@${c.kernelGoneAt && (c.kernelGoneAt - c.requestAt).toFixed(0)} bytes=${c.bytes}\n`);
  closeAll(conns);
  return { conns, runMs: end - start };
}

/** 200 readers at 2 KB/s. */
async function slowReaders(server) {
  const name = `slow-readers x${CONF.slowReaders} @${CONF.slowRate / KiB}KB/s`;
  const since = server.access.length;
  const s = sampler(server.pid);
  const specs = pacedSpecs(server, addresses('127.3', CONF.slowReaders, CONF.perAddr), CONF.slowRate, 'attack/slow-reader');
  const { result, healthy } = await withHealthy(server, () => pacedRun(server, specs, CONF.slowRunMs));
  const { rss, before } = s.stop();
  const cut = result.conns.filter((c) => c.cut);
  const cutTimes = stats(cut.map((c) => cutAt(c) - c.requestAt));
  const log = outcomes(server, since, '/big-64m.img');
  row(name, `cut within ${fmtS(result.runMs)}`, `${cut.length} of ${result.conns.length}`, 'report', '');
  row(name, 'cut after its request (min/med/max)', fmtStats(cutTimes));
  row(name, 'bytes read by a reader before its cut (med)', cut.length ? `${(stats(cut.map((c) => c.bytes)).med / KiB).toFixed(0)} KB` : '-');
  row(name, 'bytes the server sent before the cut (med, log)', log.recs.length ? `${(stats(log.recs.map((r) => r.bytesSent)).med / KiB).toFixed(0)} KB` : '-');
  row(name, 'server log outcomes', log.text);
  row(name, 'readers\' sockets at 5s (ss -tmi)', memText(result.conns));
  row(name, `peak server RSS (${fmtMB(before)} before)`, fmtMB(rss));
  healthyRow(name, healthy);
}

/** Everything from one address: the per-address cap answers 503 beyond its count. */
async function perIpCap(server) {
  const name = `per-ip-cap x${CONF.conns} from 127.4.0.2`;
  const specs = Array.from({ length: CONF.conns }, () => ({ server, local: '127.4.0.2', flowing: true, pauseAfterHead: true, request: getRequest('/big-64m.img', 'attack/cap') }));
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
  row(name, 'answered 503', `${busy} (with Retry-After: ${retryAfter})`, `${Math.max(0, CONF.conns - PER_IP_CAP)}`, verdict(busy === Math.max(0, CONF.conns - PER_IP_CAP)));
  row(name, 'refused / no connection', refused);
  if (other) row(name, 'other (reset or no answer in 3s)', other);
  healthyRow(name, healthy);
}

/** Step down the reading rate: the slowest rate whose readers (and all faster ones) are never cut. */
async function rateSearch(server) {
  const specs = [];
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
      return { rate, readers: cs.length, cut: cut.length, firstCut: cut.length ? Math.min(...cut.map((c) => cutAt(c) - c.requestAt)) : null, status: cs.map((c) => c.head.slice(9, 12)).join('/') };
    }),
  };
}

function rateRows(name, res, targetKB) {
  let slowest = null;
  for (const r of [...res.perRate].sort((a, b) => b.rate - a.rate)) {
    if (r.cut) break;
    slowest = r.rate;
  }
  const per = res.perRate.map((r) => `${r.rate / KiB}:${r.cut ? `CUT@${fmtS(r.firstCut)}` : 'ok'}`).join(' ');
  row(name, `per rate KB/s (${CONF.readersPerRate} reader(s) each, ${fmtS(res.runMs)})`, per);
  row(name, `readers' sockets at 5s (ss -tmi); tcp_rmem ${res.rmem}`, res.mem);
  row(name, `slowest rate never cut (stall ${fmtS(stallMs)})`, slowest === null ? 'none' : `${slowest / KiB} KB/s`, `<= ${targetKB} KB/s`, verdict(slowest !== null && slowest <= targetKB * KiB));
}

async function rateSearchMtu1500() {
  const name = 'rates, netns lo mtu 1500';
  const pass = SERVER_FLAGS.flatMap((f) => (opts.server[f] !== undefined ? [`--${f}`, opts.server[f]] : []));
  const inner = [process.execPath, SELF, '--_inner', 'rates', ...(Q ? ['--quick'] : []), ...pass].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `ip link set lo up mtu 1500 && exec ${inner}`;
  const res = await new Promise((resolve) => {
    let child;
    try {
      child = spawn('unshare', ['-n', 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      return resolve({ error: e.message });
    }
    onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
    const killer = setTimeout(() => child.kill('SIGKILL'), CONF.rateRunMs + 60_000);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve({ error: e.message }));
    child.on('exit', (code) => {
      clearTimeout(killer);
      const m = /^RESULT (.*)$/m.exec(out);
      if (m) resolve(JSON.parse(m[1]));
      else resolve({ error: `unshare/ip failed (exit ${code}): ${err.trim().split('\n').slice(-2).join(' | ')}` });
    });
  });
  if (res.error) {
    row(name, 'skipped', res.error, '<= 2 KB/s', 'n/a');
    return;
  }
  rateRows(name, res, 2);
}

function healthyRow(name, pair) {
  for (const [h, what] of [
    [pair.early, 'healthy download from attack start'],
    [pair.late, `healthy download started ${fmtS(pair.lateAt)} in`],
  ]) {
    if (h.error) row(name, what, `FAILED: ${h.error} (${(h.bytes / MiB).toFixed(0)} MiB)`, '>= 0.8', 'MISS');
    else {
      row(name, what, `${fmtRate(h.bytesPerSec)} in ${fmtS(h.ms)}`, '', '');
      rows[rows.length - 1].healthy = { h, pre: currentPre };
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
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

  const want = (n) => !opts.only || opts.only.includes(n);
  const needHealthy = HEALTHY_SCENARIOS.some(want);
  process.stderr.write(`attack: bootserve pid ${server.pid} on 127.0.0.1:${server.port}, stall ${fmtS(stallMs)}, header ${fmtS(headerMs)}, ${CONF.conns} connections, fd limit ${execFileSync('bash', ['-c', 'ulimit -n']).toString().trim()}\n`);

  if (needHealthy) await healthyDownload(server); // warm-up (JIT, page cache), not counted
  const steps = [
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
      const pres = [];
      for (let i = 0; i < 2; i++) {
        pres.push(await healthyDownload(server));
        healthyRuns.push({ label: 'baseline', ...pres[i] });
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
    const baseline = base.length ? stats(base).med : 0;
    rows.unshift(['baseline', `healthy ${(CONF.healthySize / MiB).toFixed(0)} MiB download, no attack: median (each)`, baseline ? `${fmtRate(baseline)} (${base.map(fmtRate).join(', ')})` : 'FAILED', '', '']);
    // Fill in the ratio next to each scenario's healthy row.
    for (const r of rows) {
      if (!r.healthy || !baseline) continue;
      const { h, pre } = r.healthy;
      // Against the no-attack download just before this scenario (drift on a shared machine
      // hits both alike); the ratio to the run's median is shown too.
      const ref = pre && !pre.error ? pre.bytesPerSec : baseline;
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

function loMtu() {
  try {
    return fs.readFileSync('/sys/class/net/lo/mtu', 'utf8').trim();
  } catch {
    return '?';
  }
}

main();
