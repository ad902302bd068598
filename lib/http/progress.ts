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
import { kernelAccepted } from './internals.js';
import type { ProgressProbe } from './transfer.js';

/** The stall guard's looks need no fresher snapshot than this. */
const STALL_LOOK_MS = 250;
/** A snapshot may cost at most a tenth of the time between two: reading the table walks the
 * kernel's whole connection hash (about a millisecond even when empty), and parsing costs a
 * microsecond or two a row. */
const COST_SHARE = 10;
type SendQueues = Map<string, number>;

/** A socket the stall guard is watching: where /proc lists it, and its acknowledged bytes. */
interface Watched {
  socket: Socket;
  file: string;
  key: string;
  /** Acknowledged bytes at the last snapshot; undefined until one has seen it. */
  acked: number | undefined;
}

/**
 * The sockets one HTTP service's stall guard watches, and the one snapshot of /proc/net/tcp{,6}
 * they share: one read serves every socket that asks within a short while.
 */
export class AckWatcher {
  private readonly watched = new Set<Watched>();
  private snapshotAt = -Infinity;
  private minIntervalMs = 0;
  /** Whether this machine lists its connections in /proc at all (checked once). */
  private procReadable: boolean | undefined;

  /**
   * A probe for one response on `socket`: how much has the client acknowledged? Undefined
   * where /proc/net/tcp cannot be read (not Linux, or hidden) or Node no longer exposes the
   * internals (internals.ts): the guard then goes by 'drain'.
   */
  probe(socket: Socket): ProgressProbe | undefined {
    if (process.platform !== 'linux') return undefined;
    this.procReadable ??= canRead('/proc/net/tcp');
    // Without the internals no look could ever see progress: better the guard goes by 'drain'.
    if (!this.procReadable || kernelAccepted(socket) === undefined) return undefined;
    let me: Watched | null | undefined; // found on the first look: most responses never need one
    let best: number | undefined;
    const look = (maxAgeMs: number): number | undefined => {
      if (me === undefined) {
        const entry = procEntry(socket);
        me = entry && { socket, ...entry, acked: undefined };
        if (me) this.watched.add(me);
      }
      if (!me) return undefined;
      this.refresh(maxAgeMs);
      return me.acked;
    };
    return {
      tookMore() {
        const acked = look(STALL_LOOK_MS);
        if (acked === undefined) return false;
        // The first value is only a baseline: until the client's receive buffer is full, its
        // kernel acknowledges bytes whether or not the client reads them.
        const moved = best !== undefined && acked > best;
        if (best === undefined || acked > best) best = acked;
        return moved;
      },
      unacknowledged() {
        const acked = look(0);
        return acked === undefined ? undefined : socket.bytesWritten - acked;
      },
      release: () => {
        if (me) this.watched.delete(me);
      },
    };
  }

  /**
   * Read the send queues, unless the last snapshot is younger than `maxAgeMs` (or than its own
   * cost allows), and in the same synchronous step work out every watched socket's acknowledged
   * bytes. No socket write can run in between, so bytes accepted and bytes queued describe the
   * same moment: when the kernel finds room for more of a silent client's data (as other
   * connections close), both grow alike and nothing looks acknowledged.
   */
  private refresh(maxAgeMs: number): void {
    const started = performance.now();
    if (started - this.snapshotAt < Math.max(maxAgeMs, this.minIntervalMs)) return;
    const tables = new Map<string, SendQueues | null>();
    for (const w of this.watched) {
      if (w.socket.destroyed) {
        this.watched.delete(w);
        continue;
      }
      let table = tables.get(w.file);
      if (table === undefined) {
        try {
          table = parseSendQueues(readFileSync(w.file, 'latin1'));
        } catch {
          table = null;
        }
        tables.set(w.file, table);
      }
      const queued = table?.get(w.key);
      const accepted = kernelAccepted(w.socket);
      // Not listed (the table is read in pages and can miss a row): no news this time.
      w.acked = queued === undefined || accepted === undefined ? undefined : accepted - queued;
    }
    this.snapshotAt = performance.now();
    // Never so spaced that the stall guard would miss a reading client's progress.
    this.minIntervalMs = Math.min(STALL_LOOK_MS, COST_SHARE * (this.snapshotAt - started));
  }
}

/**
 * "<local> <remote>" → tx_queue, from the text of /proc/net/tcp{,6}. After "sl:" the fields are
 * one space apart, and the state has two digits:
 *    "   1: 0100007F:1F90 0100007F:C350 01 003D7E01:00000000 01:00000014 ..."
 *           local         remote        st tx_queue:rx_queue
 */
export function parseSendQueues(table: string): SendQueues {
  const queues: SendQueues = new Map();
  let at = table.indexOf('\n') + 1; // past the heading
  while (at > 0 && at < table.length) {
    const eol = table.indexOf('\n', at);
    const row = eol < 0 ? table.length : eol;
    const local = table.indexOf(': ', at) + 2;
    const remoteEnd = local > 1 && local < row ? table.indexOf(' ', table.indexOf(' ', local) + 1) : -1;
    if (remoteEnd > 0 && remoteEnd < row) {
      const tx = table.slice(remoteEnd + 4, table.indexOf(':', remoteEnd + 4));
      if (/^[0-9A-F]+$/i.test(tx)) queues.set(table.slice(local, remoteEnd), parseInt(tx, 16));
    }
    at = eol + 1;
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

function canRead(file: string): boolean {
  try {
    readFileSync(file, 'latin1');
    return true;
  } catch {
    return false;
  }
}

/** Which /proc table lists this connection, and under which key. */
function procEntry(socket: Socket): { file: string; key: string } | null {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (!localAddress || !remoteAddress || !localPort || !remotePort) return null;
  const v6 = !isIPv4(localAddress);
  return {
    file: v6 ? '/proc/net/tcp6' : '/proc/net/tcp',
    key: `${procAddress(localAddress, localPort, v6)} ${procAddress(remoteAddress, remotePort, v6)}`,
  };
}
