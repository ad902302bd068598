// Has the client taken any bytes? The socket-level answer behind the stall guard.
//
// Node hears that the kernel accepted more data only when the socket turns writable again, and
// Linux signals that only after about a third of the send buffer has drained: a client reading
// a few KB/s would look stalled for a minute. The kernel knows better: /proc/net/tcp{,6} lists
// each socket's send queue (bytes not yet acknowledged by the client). Bytes the kernel
// accepted minus that queue is what the client has acknowledged, and it grows with every
// segment the client takes. The file is read only when a stall timer is about to fire, and one
// read serves every socket that asks within a short while.
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { isIPv4 } from 'node:net';
import type { Socket } from 'node:net';
import type { ProgressProbe } from './transfer.js';

/** Node internals that say how much of what we wrote the kernel has taken. */
interface SocketInternals {
  _bytesDispatched?: number;
  _handle?: { writeQueueSize?: number } | null;
}

/** Bytes the kernel has accepted from this socket so far. */
function kernelAccepted(socket: Socket): number {
  const s = socket as unknown as SocketInternals;
  const dispatched = typeof s._bytesDispatched === 'number' ? s._bytesDispatched : socket.bytesWritten - socket.writableLength;
  return dispatched - (s._handle?.writeQueueSize ?? 0);
}

const SNAPSHOT_MS = 250;
type SendQueues = Map<string, number>;
const snapshots = new Map<string, { at: number; queues: SendQueues | null }>();

/**
 * Send queues from /proc/net/tcp or tcp6 (null if absent), no older than `since`, or than
 * SNAPSHOT_MS. Read synchronously: between the read and the caller's own count of accepted
 * bytes no socket write can run, so the two describe the same moment.
 */
function sendQueues(file: string, since: number): SendQueues | null {
  const now = Date.now();
  const cached = snapshots.get(file);
  if (cached && cached.at >= since && now - cached.at < SNAPSHOT_MS) return cached.queues;
  let queues: SendQueues | null;
  try {
    queues = parseSendQueues(readFileSync(file, 'latin1'));
  } catch {
    queues = null;
  }
  snapshots.set(file, { at: now, queues });
  return queues;
}

/** "<local> <remote>" → tx_queue, from the text of /proc/net/tcp{,6}. */
export function parseSendQueues(table: string): SendQueues {
  const queues: SendQueues = new Map();
  for (const line of table.split('\n')) {
    // "  sl  local_address rem_address   st tx_queue:rx_queue ..."
    const f = line.trim().split(/\s+/);
    const tx = f[4]?.split(':')[0];
    if (f.length > 4 && tx !== undefined && /^[0-9A-F]+$/i.test(tx)) queues.set(`${f[1]} ${f[2]}`, parseInt(tx, 16));
  }
  return queues;
}

/** An address as /proc/net/tcp spells it: 32-bit words in host byte order, in hex. */
export function procAddress(address: string, port: number, v6Table: boolean): string {
  let bytes: number[];
  if (isIPv4(address)) {
    const v4 = address.split('.').map(Number);
    bytes = v6Table ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4] : v4;
  } else {
    bytes = ipv6Bytes(address);
  }
  let hex = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const word = bytes.slice(i, i + 4);
    if (endianness() === 'LE') word.reverse();
    hex += word.map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

function ipv6Bytes(address: string): number[] {
  let addr = address.split('%')[0] as string;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  let tail: number[] = [];
  if (v4Tail) {
    tail = (v4Tail[1] as string).split('.').map(Number);
    addr = addr.slice(0, -(v4Tail[1] as string).length) + '0:0';
  }
  const [head, rest] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest ? rest.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - r.length).fill('0'), ...r].map((g) => parseInt(g || '0', 16));
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * A probe for one response on `socket`. With /proc it counts acknowledged bytes; without it
 * (not Linux) it falls back to bytes the kernel accepted, which moves only as coarsely as
 * 'drain' does.
 */
export function socketProbe(socket: Socket): ProgressProbe {
  // The first sample is only a baseline: until the client's receive buffer is full, its
  // kernel acknowledges bytes whether or not the client reads them.
  let best: number | undefined;
  // Where to look is worked out on the first sample: most responses never need one.
  let where: { file: string; key: string } | null | undefined;
  let lastAccepted = -1;
  let lastAt = 0;
  return () => {
    where ??= procEntry(socket);
    const now = Date.now();
    const accepted = kernelAccepted(socket);
    let acked = accepted;
    if (where) {
      // A shared snapshot is only as good as the moment it was taken. It may serve when this
      // socket's accepted count has not moved since our last look, which came before it; and
      // for the baseline, where a stale one can only err high (progress is seen a look later).
      const consistent = lastAccepted === -1 || accepted === lastAccepted;
      const queued = sendQueues(where.file, consistent ? lastAt : now)?.get(where.key);
      if (queued === undefined) return false; // not listed this time (the table is read in pages)
      acked = accepted - queued;
    }
    lastAccepted = accepted;
    lastAt = now;
    const moved = best !== undefined && acked > best;
    if (best === undefined || acked > best) best = acked;
    return moved;
  };
}

/** Which /proc table lists this connection, and under which key; null off Linux. */
function procEntry(socket: Socket): { file: string; key: string } | null {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (process.platform !== 'linux' || !localAddress || !remoteAddress || !localPort || !remotePort) return null;
  const v6 = !isIPv4(localAddress);
  return {
    file: v6 ? '/proc/net/tcp6' : '/proc/net/tcp',
    key: `${procAddress(localAddress, localPort, v6)} ${procAddress(remoteAddress, remotePort, v6)}`,
  };
}
