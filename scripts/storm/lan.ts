// The storm's virtual LAN: two network namespaces joined by one veth pair.
//   server ns  eth0 198.18.0.2/16: the boot server under test
//   clients ns eth0 198.18.0.1/16 plus one address per simulated machine (198.18.1.1 ...)
// 198.18.0.0/15 (RFC 2544's benchmark block) exists only inside them. Names carry our pid
// (bss-<pid>-<hex>-srv), so a run killed before its cleanup is swept by the next one.
// The neighbour table's limits (gc_thresh1-3) are not per namespace: they are raised on the
// host for the run and put back afterwards.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

export const SERVER_IP = '198.18.0.2';
const CLIENT_PRIMARY = '198.18.0.1';
const PREFIX = 'bss-';

export function machineIp(i: number): string {
  return `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

export function run(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, ...(input === undefined ? {} : { input }) });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} exited ${r.status}: ${r.stderr.trim().slice(0, 500)}`);
  return r.stdout;
}

function tryRun(cmd: string, args: readonly string[]): void {
  try {
    run(cmd, args);
  } catch {
    // cleanup goes on
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killAllIn(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 15_000 }).stdout ?? '';
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Remove namespaces left by storms whose process is gone. */
export function sweepStale(): string[] {
  const listing = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 15_000 }).stdout ?? '';
  const removed: string[] = [];
  for (const line of listing.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^bss-(\d+)-[0-9a-f]+-(srv|cli)$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    killAllIn(name);
    tryRun('ip', ['netns', 'del', name]);
    removed.push(name);
  }
  return removed;
}

const NEIGH = ['gc_thresh1', 'gc_thresh2', 'gc_thresh3'].map((k) => `/proc/sys/net/ipv4/neigh/default/${k}`);

export interface Lan {
  server: string;
  clients: string;
  exec(ns: 'server' | 'clients'): string[];
  /** UDP receive-buffer drops (RcvbufErrors) in a namespace so far. */
  udpDrops(ns: 'server' | 'clients'): number;
  /** Forget learned neighbours (between servers, so each run starts alike). */
  flushNeighbours(): void;
  close(): void;
}

export interface LanOptions {
  machines: number;
  /** net.core.rmem_default/rmem_max in the server namespace; undefined: the kernel's defaults. */
  serverRmem?: number | undefined;
}

export function createLan(options: LanOptions): Lan {
  const id = `${PREFIX}${process.pid}-${randomBytes(2).toString('hex')}`;
  const ns = { server: `${id}-srv`, clients: `${id}-cli` };
  const savedNeigh = NEIGH.map((p) => readFileSync(p, 'utf8').trim());
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const name of Object.values(ns)) {
      killAllIn(name);
      tryRun('ip', ['netns', 'del', name]);
    }
    NEIGH.forEach((p, i) => {
      try {
        writeFileSync(p, savedNeigh[i] as string);
      } catch {
        // leave it
      }
    });
  };
  try {
    // A thousand machines are a thousand neighbour entries in the server's namespace; the
    // table is the host's, 1024 entries by default.
    const want = [
      Math.max(Number(savedNeigh[0]), 1024),
      Math.max(Number(savedNeigh[1]), 2 * options.machines + 1024),
      Math.max(Number(savedNeigh[2]), 4 * options.machines + 2048),
    ];
    NEIGH.forEach((p, i) => writeFileSync(p, String(want[i])));
    run('ip', ['netns', 'add', ns.server]);
    run('ip', ['netns', 'add', ns.clients]);
    run('ip', ['-n', ns.server, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.clients]);
    const lines = [`addr add ${CLIENT_PRIMARY}/16 dev eth0`];
    for (let i = 0; i < options.machines; i++) lines.push(`addr add ${machineIp(i)}/16 dev eth0`);
    run('ip', ['-n', ns.clients, '-batch', '-'], lines.join('\n') + '\n');
    run('ip', ['-n', ns.server, 'addr', 'add', `${SERVER_IP}/16`, 'dev', 'eth0']);
    for (const n of Object.values(ns)) {
      run('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', n, 'link', 'set', 'eth0', 'up']);
    }
    // A limited broadcast (255.255.255.255) needs a route: the clients' DISCOVERs go out of eth0,
    // to the server's namespace and nowhere else.
    run('ip', ['-n', ns.clients, 'route', 'add', 'default', 'dev', 'eth0']);
    // The simulator's sockets must not be where packets are lost.
    run('ip', ['netns', 'exec', ns.clients, 'sysctl', '-qw', 'net.core.rmem_max=16777216', 'net.core.rmem_default=1048576']);
    if (options.serverRmem !== undefined)
      run('ip', [
        'netns',
        'exec',
        ns.server,
        'sysctl',
        '-qw',
        `net.core.rmem_max=${options.serverRmem}`,
        `net.core.rmem_default=${options.serverRmem}`,
      ]);
  } catch (err) {
    close();
    throw err;
  }
  return {
    server: ns.server,
    clients: ns.clients,
    exec: (which) => ['ip', 'netns', 'exec', ns[which]],
    udpDrops: (which) => {
      const text = run('ip', ['netns', 'exec', ns[which], 'cat', '/proc/net/snmp']);
      const udp = text.split('\n').filter((l) => l.startsWith('Udp:'));
      const names = (udp[0] ?? '').split(/\s+/);
      const values = (udp[1] ?? '').split(/\s+/);
      return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
    },
    flushNeighbours: () => {
      tryRun('ip', ['-n', ns.server, 'neigh', 'flush', 'all']);
      tryRun('ip', ['-n', ns.clients, 'neigh', 'flush', 'all']);
    },
    close,
  };
}
