// The transfer loop: every response body goes out through sendBody, guarded against stalls.
//
// Reads come from the already-open file with fs.createReadStream (one stream per range) and are
// written by hand, never pipe(): when a write returns false the transfer pauses the file and
// races the sink's 'drain', the sink closing, and the stall timer. A transfer is always in one
// named phase (Phase below), and every change of phase goes through `enter`.
//
// Three small parts decide the rest: ReadSizer (how much each file read takes), InFlightBudget
// (how much an unproven client may hold unacknowledged) and StallGuard (the lazy timer: progress
// only stamps a time, and the timer looks at that stamp when it fires, so a healthy transfer
// costs one timer per window, not one per chunk).
import { createReadStream, type ReadStream } from 'node:fs';
import type { TransferOutcome } from '../observe/outcomes.js';
import { monotonicNow, type TransferProgress } from '../observe/transfers.js';
import type { ByteRange } from './range.js';
import { BufferPool } from './readbuffers.js';

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

/**
 * What transfers of one server share: the recycled read buffers, how many transfers read
 * LARGE_CHUNK_SIZE at a time right now, and how many have grown their reads at all. One per
 * HTTP service (tests make their own).
 */
export class TransferEngine {
  readonly buffers = new BufferPool();
  largeReaders = 0;
  grownReaders = 0;
}

export interface TransferOptions {
  /** Abort after this long without progress; 0 disables the guard. */
  stallMs: number;
  /** Bytes per file read once the client has proven itself; by default 1 MiB while few
   * transfers read that much, else 256 KiB (see ReadSizer). */
  chunkSize?: number;
  /** Bytes per file read at first; defaults to START_CHUNK_SIZE. */
  startChunkSize?: number;
  /** Body bytes after which reads grow to chunkSize where the probe is blind; defaults to GROW_AFTER. */
  growAfter?: number;
  probe?: ProgressProbe | undefined;
  /** Tear the connection down at once (a TCP reset) after a stall or a read error. */
  abort: () => void;
  progress?: TransferProgress | undefined;
  /** The clock; tests pass a mocked one. */
  now?: () => number;
  engine?: TransferEngine;
}

/**
 * Where a transfer is. The client is what it waits on in 'held-back', 'awaiting-drain' and
 * 'flushing': only there can it stall.
 */
export type Phase =
  /** Literal parts going out (or the next part being chosen). */
  | 'writing-parts'
  /** A read stream flows into the socket. */
  | 'streaming'
  /** Over an unproven client's in-flight budget: the stream is paused, and looked at again soon. */
  | 'held-back'
  /** The socket pushed back: paused until 'drain'. */
  | 'awaiting-drain'
  /** end() is called: 'finish' comes once the tail is flushed to the kernel. */
  | 'flushing'
  /** The outcome is known: waiting for read streams to close before the file is let go. */
  | 'closing'
  | 'done';

const WAITING_ON_CLIENT: ReadonlySet<Phase> = new Set(['held-back', 'awaiting-drain', 'flushing']);

/**
 * Reads start small and grow once the client has proven it reads: it acknowledged
 * UNPROVEN_IN_FLIGHT bytes (below), or, where that cannot be seen, it took more than a socket
 * buffer can hold (GROW_AFTER). Large reads make fast streaming cheap (each read is a hand-off
 * to a worker thread, dear on small VMs), but a client that stops reading pins the chunk stuck
 * in its socket plus one read ahead: 512 KiB each would let 1000 silent connections hold half a
 * gigabyte until the stall guard cuts them. A silent client is never proven, so it only ever
 * pins two small chunks. A few proven transfers read 1 MiB at a time; beyond that, 256 KiB; and
 * in a boot storm, with hundreds of downloads proven at once, 64 KiB: a thousand downloads then
 * hold about 128 MiB of read chunks instead of 512 (the storm simulator's 630 MB peak RSS).
 */
const DEFAULT_CHUNK_SIZE = 256 * 1024;
const CROWDED_CHUNK_SIZE = 64 * 1024;
/** Proven transfers at once beyond which reads stay at CROWDED_CHUNK_SIZE. */
const CROWDED_READERS = 128;
const LARGE_CHUNK_SIZE = 1024 * 1024;
const START_CHUNK_SIZE = 16 * 1024;
const GROW_AFTER = 8 * 1024 * 1024;
/** A rest of a range up to this size is read at once: it pins no more than two small reads. */
const ONE_READ_MAX = 64 * 1024;
const FEW_LARGE_READERS = 4;

/** How much each read of the file takes: small until the client is proven, then large, once. */
class ReadSizer {
  size: number;
  grown = false;
  private large = false;
  /** Counted in engine.grownReaders until released. */
  private counted = false;

  constructor(
    private readonly options: TransferOptions,
    private readonly engine: TransferEngine,
  ) {
    this.size = options.startChunkSize ?? START_CHUNK_SIZE;
  }

  /** The stream's read size for the rest of a range. */
  highWaterMark(rest: number): number {
    return !this.grown && rest <= ONE_READ_MAX ? Math.max(this.size, rest) : this.size;
  }

  grow(): void {
    this.grown = true;
    this.counted = true;
    this.engine.grownReaders++;
    this.large = this.options.chunkSize === undefined && this.engine.largeReaders < FEW_LARGE_READERS;
    if (this.large) this.engine.largeReaders++;
    const crowded = this.engine.grownReaders > CROWDED_READERS;
    this.size = this.options.chunkSize ?? (this.large ? LARGE_CHUNK_SIZE : crowded ? CROWDED_CHUNK_SIZE : DEFAULT_CHUNK_SIZE);
  }

  release(): void {
    if (this.large) this.engine.largeReaders--;
    if (this.counted) this.engine.grownReaders--;
    this.large = false;
    this.counted = false;
  }
}

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

/** Whether the client has shown it reads: 'blind' when the probe cannot see acknowledgements. */
type Trust = 'unproven' | 'proven' | 'blind';

class InFlightBudget {
  trust: Trust;

  constructor(private readonly probe: ProgressProbe | undefined) {
    this.trust = probe?.unacknowledged ? 'unproven' : 'blind';
  }

  /** Bytes the client has not acknowledged, if the probe can tell; a failed look is no figure. */
  unacknowledged(): number | undefined {
    try {
      return this.probe?.unacknowledged?.();
    } catch {
      return undefined;
    }
  }

  /** May more go out, `sent` bytes in? This is also where the client becomes proven. */
  allows(sent: number): boolean {
    // A response that fits in the budget needs no look at all.
    if (this.trust !== 'unproven' || sent < UNPROVEN_IN_FLIGHT) return true;
    const unacked = this.unacknowledged();
    if (unacked === undefined) return false; // no figure yet
    if (sent - unacked >= UNPROVEN_IN_FLIGHT) this.trust = 'proven';
    return this.trust === 'proven' || unacked < UNPROVEN_IN_FLIGHT;
  }
}

/**
 * The stall timer. It wakes every eighth of a window; recent progress needs no look, otherwise
 * the probe samples the socket while the transfer waits on the client, and only a whole window
 * without any progress is a stall.
 */
class StallGuard {
  private timer: NodeJS.Timeout | undefined;
  private readonly sampleMs: number;

  constructor(
    private readonly stallMs: number,
    private readonly live: TransferProgress,
    private readonly now: () => number,
    private readonly probe: ProgressProbe | undefined,
    private readonly waitingOnClient: () => boolean,
    private readonly stalled: () => void,
  ) {
    this.sampleMs = Math.max(1, Math.floor(stallMs / 8));
  }

  start(): void {
    if (this.stallMs > 0) this.arm(this.sampleMs);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.fire(), ms);
  }

  private fire(): void {
    const idle = this.now() - this.live.lastProgressAt;
    if (idle < this.sampleMs) return this.arm(this.sampleMs - idle);
    // Waiting on the disk, not the client: that is not the client's stall.
    let moved = !this.waitingOnClient();
    if (!moved) {
      try {
        moved = this.probe?.tookMore() ?? false;
      } catch {
        // a failed look is no news
      }
    }
    if (moved) this.live.lastProgressAt = this.now();
    const still = this.now() - this.live.lastProgressAt;
    if (still >= this.stallMs) return this.stalled();
    this.arm(Math.min(this.sampleMs, this.stallMs - still));
  }
}

const NO_ENGINE = new TransferEngine();

/**
 * Send `parts` to `sink` and end it. Releases `file` before the promise settles, whatever the
 * outcome, once no read on it is in flight. Never rejects.
 */
export function sendBody(
  sink: Sink,
  file: FileLease | undefined,
  parts: readonly BodyPart[],
  options: TransferOptions,
): Promise<TransferResult> {
  return new BodyTransfer(sink, file, parts, options).run();
}

class BodyTransfer {
  phase: Phase = 'writing-parts';
  private readonly live: TransferProgress;
  private readonly now: () => number;
  private readonly engine: TransferEngine;
  private readonly sizer: ReadSizer;
  private readonly budget: InFlightBudget;
  private readonly guard: StallGuard;
  /** Index of the next part. */
  private next = 0;
  private stream: ReadStream | undefined;
  /** Next byte of the file to send, and the last byte of the current range. */
  private pos = 0;
  private end = 0;
  /** Read streams not yet closed: the descriptor outlives every one of them. */
  private openStreams = 0;
  private hold: NodeJS.Timeout | undefined;
  private resolve!: (result: TransferResult) => void;
  private result: TransferResult | undefined;
  private readonly blindAfterMs: number;

  constructor(
    private readonly sink: Sink,
    private readonly file: FileLease | undefined,
    private readonly parts: readonly BodyPart[],
    private readonly options: TransferOptions,
  ) {
    this.now = options.now ?? monotonicNow;
    this.engine = options.engine ?? NO_ENGINE;
    this.live = options.progress ?? { bytesSent: 0, lastProgressAt: 0 };
    this.live.bytesSent = 0;
    this.live.lastProgressAt = this.now();
    this.sizer = new ReadSizer(options, this.engine);
    this.budget = new InFlightBudget(options.probe);
    this.guard = new StallGuard(
      options.stallMs,
      this.live,
      this.now,
      options.probe,
      () => WAITING_ON_CLIENT.has(this.phase),
      () => this.finish('stalled'),
    );
    this.blindAfterMs = options.stallMs > 0 ? Math.min(HOLD_RECHECK_MAX_MS, options.stallMs / 4) : HOLD_RECHECK_MAX_MS;
  }

  run(): Promise<TransferResult> {
    const settled = new Promise<TransferResult>((resolve) => (this.resolve = resolve));
    if (this.sink.destroyed) {
      this.finish('client-gone');
      return settled;
    }
    this.sink.on('drain', this.onDrain);
    this.sink.on('finish', this.onFinish);
    this.sink.on('close', this.onClose);
    this.guard.start();
    this.writeParts();
    return settled;
  }

  /** Every change of phase, in one place. */
  private enter(phase: Phase): void {
    this.phase = phase;
  }

  private readonly onDrain = (): void => {
    if (this.phase !== 'awaiting-drain' && this.phase !== 'held-back') return;
    // With a probe, only acknowledged bytes are progress: a drain may be no more than the
    // kernel finding memory for a silent client's socket as other connections close.
    if (!this.options.probe) this.live.lastProgressAt = this.now();
    // (A write of a chunk above the socket's write mark, 16 KiB on Node 20 and 64 KiB from 22,
    // always returns false: growing happens here.)
    if (this.stream) this.afterWrite(this.stream, 'paused');
    else this.writeParts();
  };

  private readonly onFinish = (): void => this.finish('complete');
  private readonly onClose = (): void => this.finish('client-gone');

  /** Write literal parts until one is a file range or the socket pushes back; then end. */
  private writeParts(): void {
    this.enter('writing-parts');
    while (this.next < this.parts.length) {
      const part = this.parts[this.next++] as BodyPart;
      if (!Buffer.isBuffer(part)) return this.startRange(part);
      this.live.bytesSent += part.length;
      if (!this.sink.write(part)) return this.enter('awaiting-drain');
    }
    // The guard stays on for the tail: end() returns at once, 'finish' comes when it is flushed.
    this.enter('flushing');
    this.sink.end();
  }

  private startRange(range: ByteRange): void {
    this.pos = range.start;
    this.end = range.end;
    this.openStream();
  }

  /** Stream the file from `pos` to `end` in reads of the sizer's size. */
  private openStream(): void {
    const highWaterMark = this.sizer.highWaterMark(this.end - this.pos + 1);
    const fs = { read: this.engine.buffers.read, close: keepOpen };
    const s = createReadStream('', { fd: this.file?.fd, fs, start: this.pos, end: this.end, highWaterMark });
    this.stream = s;
    this.openStreams++;
    this.enter('streaming');
    s.once('close', () => {
      if (--this.openStreams === 0 && this.phase === 'closing') this.settle();
    });
    s.on('data', (chunk) => this.onData(s, chunk as Buffer));
    s.on('end', () => {
      if (this.stream !== s) return;
      this.stream = undefined;
      // A short read means the file shrank under us: a short body would be silently wrong.
      if (this.pos <= this.end) this.finish('read-error');
      else this.writeParts();
    });
    s.on('error', () => {
      if (this.stream === s) this.finish('read-error');
    });
  }

  private onData(s: ReadStream, buf: Buffer): void {
    if (this.stream !== s || this.result) return; // a chunk read before the stream was let go
    // The bytes must be the ones read (internals.ts); if not, this body cannot be trusted.
    if (!this.engine.buffers.verify(buf)) return this.finish('read-error');
    this.pos += buf.length;
    this.live.bytesSent += buf.length;
    // Once the socket has the bytes, the buffer can take the next read.
    const written = (err?: Error | null) => {
      if (!err) this.engine.buffers.recycle(buf);
    };
    if (!this.sink.write(buf, written)) {
      s.pause();
      return this.enter('awaiting-drain');
    }
    this.afterWrite(s, 'flowing');
  }

  /** The socket took a chunk (or drained): hold back, grow the reads, or go on. */
  private afterWrite(s: ReadStream, flow: 'flowing' | 'paused'): void {
    if (!this.budget.allows(this.live.bytesSent)) return this.holdBack(s);
    if (this.shouldGrow()) return this.grow(s);
    if (flow === 'flowing') return;
    this.enter('streaming');
    s.resume();
  }

  private shouldGrow(): boolean {
    if (this.sizer.grown || this.pos > this.end) return false;
    const trust = this.budget.trust;
    return trust === 'blind' ? this.live.bytesSent >= (this.options.growAfter ?? GROW_AFTER) : trust === 'proven';
  }

  /** Proven: go on from `pos` with large reads (what `s` read ahead is dropped). */
  private grow(s: ReadStream): void {
    this.stream = undefined;
    s.destroy();
    this.sizer.grow();
    this.openStream();
  }

  /** Over the budget: look again soon, then less and less often, until the client acknowledges. */
  private holdBack(s: ReadStream, delay = HOLD_RECHECK_MS, heldMs = 0): void {
    this.enter('held-back');
    s.pause();
    clearTimeout(this.hold);
    this.hold = setTimeout(() => {
      if (this.phase !== 'held-back' || this.stream !== s) return;
      heldMs += delay;
      // No figure for a while: the probe cannot see this socket, so stop holding (well
      // before a short stall window would cut the transfer for it).
      if (heldMs >= this.blindAfterMs && this.budget.unacknowledged() === undefined) this.budget.trust = 'blind';
      if (!this.budget.allows(this.live.bytesSent)) return this.holdBack(s, Math.min(2 * delay, HOLD_RECHECK_MAX_MS), heldMs);
      if (this.shouldGrow()) return this.grow(s);
      this.enter('streaming');
      s.resume();
    }, delay);
  }

  private finish(outcome: TransferOutcome): void {
    if (this.result) return;
    this.result = { outcome, bytesSent: this.live.bytesSent };
    this.enter('closing');
    this.guard.stop();
    clearTimeout(this.hold);
    this.sizer.release();
    this.sink.off('drain', this.onDrain);
    this.sink.off('finish', this.onFinish);
    this.sink.off('close', this.onClose);
    if (outcome === 'stalled' || outcome === 'read-error') this.options.abort();
    this.options.probe?.release?.();
    this.stream?.destroy();
    this.stream = undefined;
    // Let the descriptor go only once no stream has a read in flight on it.
    if (this.openStreams === 0) this.settle();
  }

  private settle(): void {
    this.enter('done');
    this.file?.release();
    this.resolve(this.result as TransferResult);
  }
}

/**
 * A ReadStream closes its descriptor when it is destroyed, whatever autoClose says; ours share
 * one descriptor (ranges, growing reads) that the transfer releases once, after the last of
 * them: so their close does nothing.
 */
function keepOpen(_fd: number, done: (err: null) => void): void {
  done(null);
}
