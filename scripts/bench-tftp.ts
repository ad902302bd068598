// TFTP throughput: bootserve --tftp against tftpd-hpa on loopback, one 128 MiB file, blksize
// 1468, windowsize 1 and 16, fetched with atftp (C, supports windowsize). A benchmark, not a test.
//
//   scripts/bench tftp [--rounds N] [--size MiB] [--json FILE]
//
// tftpd-hpa (5.2, Debian 12) does not implement windowsize (RFC 7440): it leaves the option out
// of its OACK and answers in lockstep, so its two rows measure the same thing. Each server is
// started fresh on a free port on 127.0.0.1; every run is bounded in time.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name: string, fallback?: string | number): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback === undefined ? undefined : String(fallback);
};
if (args.includes('--help')) {
  console.log('scripts/bench tftp [--rounds N (3)] [--size MiB (128)] [--json FILE]');
  process.exit(0);
}
const ROUNDS = Number(arg('rounds', process.env.BENCH_ROUNDS ?? 3));
const SIZE = Number(arg('size', 128)) * 1024 * 1024;
const WINDOWS = [1, 16];
const BLKSIZE = 1468;

function die(message: string): never {
  console.error(`bench-tftp: ${message}`);
  process.exit(1);
}
const have = (cmd: string, probe = ['--version']): boolean => spawnSync(cmd, probe, { stdio: 'ignore' }).status === 0;

// What it needs, from Debian's packages.
const missing = [];
if (!have('atftp')) missing.push('atftp');
if (!existsSync('/usr/sbin/in.tftpd')) missing.push('tftpd-hpa');
if (missing.length) {
  console.error(`bench-tftp: installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) die(`cannot install ${missing.join(' ')}`);
}
if (!existsSync(join(REPO, 'dist/main.js'))) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });

// One file of random bytes, kept between runs; readable by tftpd-hpa's unprivileged user.
const DATA = join(tmpdir(), 'bootserve-bench-tftp');
const NAME = `tftp-${SIZE / 1048576}M.bin`;
mkdirSync(DATA, { recursive: true });
chmodSync(DATA, 0o755);
if (!existsSync(join(DATA, NAME)) || statSync(join(DATA, NAME)).size !== SIZE) {
  writeFileSync(join(DATA, NAME), randomBytes(SIZE), { mode: 0o644 });
}
readFileSync(join(DATA, NAME)); // into the page cache
const WANT = createHash('sha256').update(readFileSync(join(DATA, NAME))).digest('hex');

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(r));
  return port;
}

/** CPU seconds of a process. tftpd-hpa forks a child per transfer and never waits for it
 * (SIGCHLD ignored), so its transfers' CPU cannot be read this way: shown as n/a. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

const SERVERS: Record<string, (port: number) => ChildProcess> = {
  bootserve: (port) => {
    const args = ['--quiet', '--tftp', '--tftp-port', String(port), '--host', '127.0.0.1', '--port', '0', '--no-admin'];
    return spawn(process.execPath, [join(REPO, 'bin/bootserve.js'), DATA, ...args], { stdio: 'ignore' });
  },
  'tftpd-hpa': (port) => {
    const args = ['--listen', '--foreground', '--address', `127.0.0.1:${port}`, '--user', 'nobody', '--secure', DATA];
    return spawn('/usr/sbin/in.tftpd', args, { stdio: 'ignore' });
  },
};

function atftp(port: number, windowsize: number, dest: string): number {
  const started = process.hrtime.bigint();
  const options = ['--option', `blksize ${BLKSIZE}`, '--option', `windowsize ${windowsize}`];
  const args = [...options, '-g', '-r', NAME, '-l', dest, '127.0.0.1', String(port)];
  const r = spawnSync('atftp', args, { timeout: 300_000, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`atftp failed: ${r.stderr || r.error?.message}`);
  return seconds;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
interface Result {
  server: string;
  windowsize: number;
  mbps: number;
  rounds: number[];
  cpuPerGiB: number;
}
const results: Result[] = [];
for (const [name, startServer] of Object.entries(SERVERS)) {
  const port = await freeUdpPort();
  const child = startServer(port);
  await new Promise((r) => setTimeout(r, 1500));
  if (child.exitCode !== null) die(`${name} did not start`);
  try {
    // One checked download first: the right bytes, not only fast ones.
    const check = join(DATA, `check-${name}`);
    atftp(port, 16, check);
    const got = createHash('sha256').update(readFileSync(check)).digest('hex');
    rmSync(check);
    if (got !== WANT) die(`${name} sent different bytes`);
    const pid = child.pid ?? die(`${name} did not start`);
    for (const windowsize of WINDOWS) {
      const rates: number[] = [];
      const cpu: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const before = cpuSeconds(pid);
        const seconds = atftp(port, windowsize, '/dev/null');
        cpu.push(((cpuSeconds(pid) - before) * 1073741824) / SIZE);
        rates.push(SIZE / 1e6 / seconds);
      }
      results.push({ server: name, windowsize, mbps: median(rates), rounds: rates, cpuPerGiB: median(cpu) });
      console.error(`${name} windowsize ${windowsize}: ${rates.map((r) => r.toFixed(1)).join(', ')} MB/s`);
    }
  } finally {
    child.kill('SIGKILL');
  }
}

const ref = (ws: number): number => results.find((r) => r.server === 'tftpd-hpa' && r.windowsize === ws)?.mbps ?? NaN;
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`\nTFTP, ${SIZE / 1048576} MiB over loopback, blksize ${BLKSIZE}, atftp client, median of ${ROUNDS} (load ${load})\n`);
console.log('| server | windowsize asked | MB/s | × tftpd-hpa (same window) | × tftpd-hpa (window 1) | server CPU s/GiB |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  const cpu = r.server === 'tftpd-hpa' ? 'n/a' : r.cpuPerGiB.toFixed(1);
  const same = (r.mbps / ref(r.windowsize)).toFixed(2);
  console.log(`| ${r.server} | ${r.windowsize} | ${r.mbps.toFixed(1)} | ${same} | ${(r.mbps / ref(1)).toFixed(2)} | ${cpu} |`);
}
const json = arg('json');
if (json) writeFileSync(json, JSON.stringify(results, null, 2));
