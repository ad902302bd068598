// The transfer loop: every response body goes out through sendBody, guarded against stalls.
//
// Reads come from the already-open file with fs.createReadStream (one stream per range) and are
// written by hand, never pipe(): when a write returns false the loop pauses the file and races
// the sink's 'drain', the sink closing, and the stall timer. The timer is lazy: progress only
// stamps a time, and the timer looks at that stamp when it fires, so a healthy transfer costs
// one timer per window, not one per chunk.
import { createReadStream, type ReadStream } from 'node:fs';
import { monotonicNow, type TransferOutcome, type TransferProgress } from '../metrics.js';
import type { ByteRange } from './range.js';
import { recycle, recyclingRead } from './readbuffers.js';

/** A piece of a body: literal bytes (small bodies, multipart framing) or a range of the file. */
export type BodyPart = Buffer | ByteRange;

/**
 * The open file a body's ranges are read from. Others may hold the same descriptor (the
 * open-file cache, other transfers): a transfer releases its hold, and whoever holds it last
 * closes it.
 */
export interface FileLease {
  readonly fd: number;
  release(): void;
}

export interface TransferResult {
  outcome: TransferOutcome;
  /** Body bytes handed to the socket. */
  bytesSent: number;
}

/** Where a body goes: an http.ServerResponse, or a fake in tests. */
export interface Sink {
  /** `written` is called once the chunk's bytes are no longer needed (err set if they never went). */
  write(chunk: Buffer, written?: (err?: Error | null) => void): boolean;
  end(): void;
  readonly destroyed: boolean;
  on(event: 'drain' | 'close' | 'finish', listener: () => void): unknown;
  off(event: 'drain' | 'close' | 'finish', listener: () => void): unknown;
}

/** What the kernel says about the client's end of the connection (see progress.ts). */
export interface ProgressProbe {
  /**
   * Has the client acknowledged any bytes since the last call? Asked only while the transfer
   * waits on the client and no 'drain' came for an eighth of a window. The first answer only
   * sets the baseline.
   */
  tookMore(): boolean;
  /**
   * Bytes written to the connection that the client has not acknowledged yet, from the latest
   * look (a few milliseconds old, up to 250 ms when looks are dear); undefined while there is
   * no figure.
   */
  unacknowledged?(): number | undefined;
  /** Called once when the transfer ends. */
  release?(): void;
}

export interface TransferOptions {
  /** Abort after this long without progress; 0 disables the guard. */
  stallMs: number;
  /** Bytes per file read once the client has proven itself; by default 1 MiB while few
   * transfers read that much, else 256 KiB (see START_CHUNK_SIZE). */
  chunkSize?: number;
  /** Bytes per file read at first; defaults to START_CHUNK_SIZE. */
  startChunkSize?: number;
  /** Body bytes after which reads grow to chunkSize; defaults to GROW_AFTER. */
  growAfter?: number;
  probe?: ProgressProbe | undefined;
  /** Tear the connection down at once (a TCP reset) after a stall or a read error. */
  abort: () => void;
  progress?: TransferProgress | undefined;
  /** The clock; tests pass a mocked Date.now. */
  now?: () => number;
}

/**
 * Reads start small and grow once the client has proven it reads: it acknowledged
 * UNPROVEN_IN_FLIGHT bytes (below), or, where that cannot be seen, it took more than a socket
 * buffer can hold (GROW_AFTER). Large reads make fast streaming cheap (each read is a hand-off
 * to a worker thread, dear on small VMs), but a client that stops reading pins the chunk stuck
 * in its socket plus one read ahead: 512 KiB each would let 1000 silent connections hold half a
 * gigabyte until the stall guard cuts them. A silent client is never proven, so it only ever
 * pins two small chunks. A few proven transfers read 1 MiB at a time; beyond that, 256 KiB.
 */
const DEFAULT_CHUNK_SIZE = 256 * 1024;
const LARGE_CHUNK_SIZE = 1024 * 1024;
const START_CHUNK_SIZE = 16 * 1024;
const GROW_AFTER = 8 * 1024 * 1024;
/** A rest of a range up to this size is read at once: it pins no more than two small reads. */
const ONE_READ_MAX = 64 * 1024;
const FEW_LARGE_READERS = 4;
/** Transfers reading LARGE_CHUNK_SIZE at a time right now. */
let largeReaders = 0;

/**
 * Until the client has acknowledged this many bytes of a response, no more than this many are
 * let out unacknowledged (when the probe can tell). Without it each silent client would be
 * handed its socket's whole send buffer, up to 4 MiB: a thousand of them cost the server
 * seconds of copying and the kernel gigabytes. A client that reads proves itself within a
 * few milliseconds, and from then on only TCP limits it.
 */
export const UNPROVEN_IN_FLIGHT = 256 * 1024;
/** First re-look at the client's acknowledgements while held back; doubles up to a second. */
const HOLD_RECHECK_MS = 4;
const HOLD_RECHECK_MAX_MS = 1000;

/**
 * The file-system calls our read streams make. Reads go into recycled buffers (readbuffers.ts).
 * A ReadStream closes its descriptor when it is destroyed, whatever autoClose says; ours share
 * one descriptor (ranges, growing reads) that sendBody releases once, after the last of them:
 * so their close does nothing.
 */
const STREAM_FS = { read: recyclingRead, close: (_fd: number, done: (err: null) => void) => done(null) };

/**
 * Send `parts` to `sink` and end it. Releases `file` before the promise settles, whatever the
 * outcome, once no read on it is in flight. Never rejects.
 */
export function sendBody(sink: Sink, file: FileLease | undefined, parts: readonly BodyPart[], options: TransferOptions): Promise<TransferResult> {
  return new Promise((resolve) => {
    const { stallMs, probe, abort } = options;
    const now = options.now ?? monotonicNow;
    const sampleMs = Math.max(1, Math.floor(stallMs / 8));
    const live = options.progress ?? { bytesSent: 0, lastProgressAt: 0 };
    live.bytesSent = 0;
    live.lastProgressAt = now();
    const growAfter = options.growAfter ?? GROW_AFTER;
    let readSize = options.startChunkSize ?? START_CHUNK_SIZE;
    let grown = false;
    let largeReader = false;
    let next = 0; // index of the next part
    let stream: ReadStream | undefined;
    let pos = 0; // next byte of the file to send
    let end = 0; // last byte of the current range
    let streams = 0; // read streams not yet closed: the descriptor outlives every one of them
    let closing: (() => void) | undefined;
    let waitingOnClient = false; // a write returned false, or end() was called and is not flushed
    let ended = false;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let hold: NodeJS.Timeout | undefined;
    // Whether the client has shown it reads: 'blind' when the probe cannot see acknowledgements.
    let trust: 'unproven' | 'proven' | 'blind' = probe?.unacknowledged ? 'unproven' : 'blind';
    const blindAfterMs = stallMs > 0 ? Math.min(HOLD_RECHECK_MAX_MS, stallMs / 4) : HOLD_RECHECK_MAX_MS;

    const onDrain = () => {
      if (!waitingOnClient || ended) return;
      // With a probe, only acknowledged bytes are progress: a drain may be no more than the
      // kernel finding memory for a silent client's socket as other connections close.
      if (!probe) live.lastProgressAt = now();
      waitingOnClient = false;
      // (A write of a chunk above the socket's write mark, 16 KiB on Node 20 and 64 KiB from 22,
      // always returns false: growing happens here.)
      if (!stream) writeParts();
      else if (!mayWriteMore()) holdBack(stream);
      else if (shouldGrow()) grow(stream);
      else stream.resume();
    };
    const onFinish = () => finish('complete');
    const onClose = () => finish('client-gone');

    function finish(outcome: TransferOutcome): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(hold);
      if (largeReader) largeReaders--;
      sink.off('drain', onDrain);
      sink.off('finish', onFinish);
      sink.off('close', onClose);
      if (outcome === 'stalled' || outcome === 'read-error') abort();
      probe?.release?.();
      const settle = () => resolve({ outcome, bytesSent: live.bytesSent });
      closing = () => {
        file?.release();
        settle();
      };
      stream?.destroy();
      stream = undefined;
      // Let the descriptor go only once no stream has a read in flight on it.
      if (streams === 0) closing();
    }

    /** Write literal parts until one is a file range or the socket pushes back. */
    function writeParts(): void {
      while (next < parts.length) {
        const part = parts[next++] as BodyPart;
        if (!Buffer.isBuffer(part)) return startRange(part);
        live.bytesSent += part.length;
        if (!sink.write(part)) {
          waitingOnClient = true; // until 'drain'
          return;
        }
      }
      // The guard stays on for the tail: end() returns at once, 'finish' comes when it is flushed.
      ended = true;
      waitingOnClient = true;
      sink.end();
    }

    function startRange(range: ByteRange): void {
      pos = range.start;
      end = range.end;
      openStream();
    }

    const shouldGrow = () => !grown && pos <= end && (trust === 'blind' ? live.bytesSent >= growAfter : trust === 'proven');
    /** Proven: go on from `pos` with large reads (what `s` read ahead is dropped). */
    function grow(s: ReadStream): void {
      stream = undefined;
      s.destroy();
      grown = true;
      largeReader = options.chunkSize === undefined && largeReaders < FEW_LARGE_READERS;
      if (largeReader) largeReaders++;
      readSize = options.chunkSize ?? (largeReader ? LARGE_CHUNK_SIZE : DEFAULT_CHUNK_SIZE);
      openStream();
    }

    /** Stream the file from `pos` to `end` in reads of `readSize`. */
    function openStream(): void {
      const rest = end - pos + 1;
      const highWaterMark = !grown && rest <= ONE_READ_MAX ? Math.max(readSize, rest) : readSize;
      const s = createReadStream('', { fd: file?.fd, fs: STREAM_FS, start: pos, end, highWaterMark });
      stream = s;
      streams++;
      s.once('close', () => {
        if (--streams === 0) closing?.();
      });
      s.on('data', (chunk) => {
        if (stream !== s || done) return; // a chunk read before the stream was let go
        const buf = chunk as Buffer;
        pos += buf.length;
        live.bytesSent += buf.length;
        // Once the socket has the bytes, the buffer can take the next read.
        const written = (err?: Error | null) => {
          if (!err) recycle(buf);
        };
        if (!sink.write(buf, written)) {
          waitingOnClient = true; // until 'drain'
          s.pause();
        } else if (!mayWriteMore()) holdBack(s);
        else if (shouldGrow()) grow(s);
      });
      s.on('end', () => {
        if (stream !== s) return;
        stream = undefined;
        // A short read means the file shrank under us: a short body would be silently wrong.
        if (pos <= end) finish('read-error');
        else writeParts();
      });
      s.on('error', () => {
        if (stream === s) finish('read-error');
      });
    }

    /** Bytes the client has not acknowledged, if the probe can tell; a failed look is no figure. */
    function unacknowledged(): number | undefined {
      try {
        return probe?.unacknowledged?.();
      } catch {
        return undefined;
      }
    }

    /**
     * Within its budget? An unproven client may hold UNPROVEN_IN_FLIGHT unacknowledged bytes, no
     * more; this is also where it becomes proven.
     */
    function mayWriteMore(): boolean {
      // A response that fits in the budget needs no look at all.
      if (trust !== 'unproven' || live.bytesSent < UNPROVEN_IN_FLIGHT) return true;
      const unacked = unacknowledged();
      if (unacked === undefined) return false; // no figure yet
      if (live.bytesSent - unacked >= UNPROVEN_IN_FLIGHT) trust = 'proven';
      return trust === 'proven' || unacked < UNPROVEN_IN_FLIGHT;
    }

    /** Over that budget: look again soon, then less and less often, until the client acknowledges. */
    function holdBack(s: ReadStream, delay = HOLD_RECHECK_MS, heldMs = 0): void {
      waitingOnClient = true;
      s.pause();
      clearTimeout(hold);
      hold = setTimeout(() => {
        if (done || stream !== s) return;
        heldMs += delay;
        // No figure for a while: the probe cannot see this socket, so stop holding (well
        // before a short stall window would cut the transfer for it).
        if (heldMs >= blindAfterMs && unacknowledged() === undefined) trust = 'blind';
        if (!mayWriteMore()) return holdBack(s, Math.min(2 * delay, HOLD_RECHECK_MAX_MS), heldMs);
        waitingOnClient = false;
        if (shouldGrow()) grow(s);
        else s.resume();
      }, delay);
    }

    function arm(ms: number): void {
      timer = setTimeout(onTimer, ms);
    }

    // The timer wakes every eighth of a window. Recent progress needs no look; otherwise the
    // probe samples the socket, and only a whole window without any progress is a stall.
    function onTimer(): void {
      if (done) return;
      const idle = now() - live.lastProgressAt;
      if (idle < sampleMs) return arm(sampleMs - idle);
      // Waiting on the disk, not the client: that is not the client's stall.
      if (!waitingOnClient) return progressed(true);
      let answer = false;
      try {
        answer = probe?.tookMore() ?? false;
      } catch {
        // a failed look is no news
      }
      progressed(answer);
    }

    function progressed(yes: boolean): void {
      if (yes) live.lastProgressAt = now();
      const idle = now() - live.lastProgressAt;
      if (idle >= stallMs) return finish('stalled');
      arm(Math.min(sampleMs, stallMs - idle));
    }

    if (sink.destroyed) {
      finish('client-gone');
      return;
    }
    sink.on('drain', onDrain);
    sink.on('finish', onFinish);
    sink.on('close', onClose);
    if (stallMs > 0) arm(sampleMs);
    writeParts();
  });
}
