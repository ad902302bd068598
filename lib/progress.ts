// Has the client taken any bytes? The socket-level answer behind the stall guard.
//
// Node hears that the kernel accepted more data only when the socket turns writable again, and
// Linux signals that only after about a third of the send buffer has drained: a client reading
// a few KB/s would look stalled for a minute. The kernel knows better: /proc/net/tcp{,6} lists
// each socket's send queue (bytes not yet acknowledged by the client). Bytes the kernel
// accepted minus that queue is what the client has acknowledged, and it grows with every
// segment the client takes. The file is read only when a stall timer is about to fire, and one
// read serves every socket that asks within a short while.
import { readFile } from 'node:fs/promises';
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
const snapshots = new Map<string, { at: number; text: Promise<string | null> }>();

/** The text of /proc/net/tcp or tcp6, shared by every probe within SNAPSHOT_MS; null if absent. */
function procTable(file: string): Promise<string | null> {
  const now = Date.now();
  const cached = snapshots.get(file);
  if (cached && now - cached.at < SNAPSHOT_MS) return cached.text;
  const text = readFile(file, 'latin1').catch(() => null);
  snapshots.set(file, { at: now, text });
  return text;
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

/** Read the tx_queue column for one connection from a table's text, or undefined. */
export function sendQueueFrom(table: string, local: string, remote: string): number | undefined {
  const at = table.indexOf(` ${local} ${remote} `);
  if (at < 0) return undefined;
  // "<local> <remote> <st> <tx_queue>:<rx_queue>"
  const fields = table.slice(at, at + 200).trim().split(/\s+/);
  const tx = fields[3]?.split(':')[0];
  return tx === undefined ? undefined : parseInt(tx, 16);
}

/**
 * A probe for one response on `socket`. With /proc it counts acknowledged bytes; without it
 * (not Linux, or the socket not found) it falls back to bytes the kernel accepted, which moves
 * only as coarsely as 'drain' does.
 */
export function socketProbe(socket: Socket): ProgressProbe {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  // The first sample is only a baseline: until the client's receive buffer is full, its
  // kernel acknowledges bytes whether or not the client reads them.
  let best: number | undefined;
  function advance(acked: number): boolean {
    const moved = best !== undefined && acked > best;
    if (best === undefined || acked > best) best = acked;
    return moved;
  }
  if (process.platform !== 'linux' || !localAddress || !remoteAddress || !localPort || !remotePort) {
    return () => advance(kernelAccepted(socket));
  }
  const v6 = !isIPv4(localAddress);
  const file = v6 ? '/proc/net/tcp6' : '/proc/net/tcp';
  const local = procAddress(localAddress, localPort, v6);
  const remote = procAddress(remoteAddress, remotePort, v6);

  return async () => {
    const accepted = kernelAccepted(socket);
    const table = await procTable(file);
    const queued = table === null ? undefined : sendQueueFrom(table, local, remote);
    return advance(queued === undefined ? accepted : accepted - queued);
  };
}
