// One TFTP read transfer, from the first packet to the outcome. No sockets: packets go out
// through `send`, arrive through `receive`, bytes come from a BlockSource, so the whole protocol
// runs in tests under mock timers.
//
// Blocks live in a ring of `windowsize` packet buffers, each read into once and sent (and resent)
// from there until the client acknowledges it. Only our own timer resends: a duplicate ACK is
// never an occasion to send (the Sorcerer's Apprentice bug, RFC 1123 4.2.3.1).
import type { TransferOutcome, TransferProgress } from '../metrics.js';
import { monotonicNow } from '../metrics.js';
import { encodeError, encodeOack, ErrorCode, writeDataHeader, type Packet } from './packet.js';
import type { BlockSource } from './source.js';

export type TransferState =
  /** OACK sent: nothing of the file goes out before the client's ACK 0. */
  | 'awaiting-oack-ack'
  /** Filling free packet buffers from the file; the window goes out when they are full. */
  | 'reading'
  /** The window is out; the retransmission timer runs until an ACK moves it. */
  | 'awaiting-ack'
  | 'done';

export interface TransferParams {
  blksize: number;
  windowsize: number;
  /** Options for the OACK; empty: no OACK, DATA 1 goes out first. */
  oack: ReadonlyArray<readonly [string, string]>;
  /** First retransmission after this long; doubles up to RETRANSMIT_MAX_MS. */
  retransmitMs: number;
  /** Give up after this long without an acknowledgement that moves the transfer (--tftp-timeout). */
  giveUpMs: number;
}

export interface TransferEnd {
  outcome: TransferOutcome;
  /** File bytes the client acknowledged. */
  bytesSent: number;
  retransmits: number;
}

export interface TransferIo {
  source: BlockSource;
  send(packet: Buffer, sent: () => void): void;
  /** Live figures for the operator's views, updated in place. */
  progress?: TransferProgress;
  now?: () => number;
}

const RETRANSMIT_MAX_MS = 16_000;

export class TftpTransfer {
  state: TransferState;
  retransmits = 0;
  /** Absolute number (no wrap) of the last block the client acknowledged. */
  private base = 0;
  /** Blocks after `base` read and ready, at most `windowsize`. */
  private held = 0;
  /** The last block's absolute number, once the source has ended. */
  private last: number | undefined;
  private readonly slots: Buffer[];
  private readonly lengths: number[];
  /** Sends handed to the socket and not yet done: their buffers must not be refilled. */
  private sending = 0;
  private afterSends: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private interval: number;
  private readonly progress: TransferProgress;
  private readonly now: () => number;
  private readonly ended: Promise<TransferEnd>;
  private resolveEnd!: (end: TransferEnd) => void;

  constructor(
    private readonly params: TransferParams,
    private readonly io: TransferIo,
  ) {
    this.slots = Array.from({ length: params.windowsize }, () => Buffer.allocUnsafe(4 + params.blksize));
    this.lengths = new Array<number>(params.windowsize).fill(0);
    this.interval = params.retransmitMs;
    this.now = io.now ?? monotonicNow;
    this.progress = io.progress ?? { bytesSent: 0, lastProgressAt: 0 };
    this.progress.bytesSent = 0;
    this.progress.lastProgressAt = this.now();
    this.ended = new Promise((resolve) => (this.resolveEnd = resolve));
    this.state = params.oack.length > 0 ? 'awaiting-oack-ack' : 'reading';
  }

  /** Begin: the OACK, or (no options) DATA 1. Resolves with the outcome; never rejects. */
  start(): Promise<TransferEnd> {
    if (this.state === 'awaiting-oack-ack') {
      this.transmit(encodeOack(this.params.oack));
      this.arm();
    } else {
      // Before the client has acknowledged anything it gets one packet (and its resends): a
      // spoofed request must not turn 50 bytes into a window of megabytes. Without options the
      // window is 1 anyway.
      void this.readAndSend();
    }
    return this.ended;
  }

  /** A packet from the client's TID. */
  receive(packet: Packet): void {
    if (this.state === 'done') return;
    if (packet.op === 'error') return this.finish('client-gone'); // edk2's ERROR 8 after its tsize probe, too
    if (packet.op !== 'ack') return;
    if (this.state === 'awaiting-oack-ack') {
      if (packet.block !== 0) return;
      this.moved();
      this.state = 'reading';
      return void this.readAndSend();
    }
    // Which held block does it acknowledge? Block numbers wrap at 65536; anything outside the
    // held window (a duplicate, a stale or a future number) changes nothing.
    const step = (packet.block - this.base) & 0xffff;
    if (step < 1 || step > this.held) return;
    for (let b = this.base + 1; b <= this.base + step; b++) this.progress.bytesSent += this.lengths[b % this.slots.length] as number;
    this.base += step;
    this.held -= step;
    this.moved();
    if (this.base === this.last) return this.finish('complete');
    // The rest of the window (if the client lost some of it) goes again, with new blocks behind it.
    if (this.state === 'awaiting-ack') {
      this.state = 'reading';
      void this.readAndSend();
    }
  }

  /** Stop now (server shutdown): the client is told, the outcome recorded. */
  abort(outcome: TransferOutcome, message: string): void {
    if (this.state === 'done') return;
    this.transmit(encodeError(ErrorCode.undefined, message));
    this.finish(outcome);
  }

  private moved(): void {
    this.progress.lastProgressAt = this.now();
    this.interval = this.params.retransmitMs;
  }

  /** Refill the free buffers after the held blocks, then send everything held. */
  private async readAndSend(): Promise<void> {
    clearTimeout(this.timer);
    if (this.sending > 0) await new Promise<void>((resolve) => (this.afterSends = resolve));
    if (this.state !== 'reading') return;
    const windowsize = this.base === 0 && this.params.oack.length === 0 ? 1 : this.slots.length;
    const first = this.base + this.held + 1;
    const count = this.last === undefined ? windowsize - this.held : 0;
    if (count > 0) {
      const views = Array.from({ length: count }, (_, i) => this.slot(first + i).subarray(4));
      let got: number;
      try {
        got = await this.io.source.fill(views);
      } catch (err) {
        if (this.isDone()) return;
        this.transmit(encodeError(ErrorCode.undefined, err instanceof Error ? err.message : 'read error'));
        return this.finish('read-error');
      }
      if (this.isDone()) return; // finished (client error, shutdown) while reading
      const full = Math.floor(got / this.params.blksize);
      for (let i = 0; i < full; i++) this.lengths[(first + i) % this.slots.length] = this.params.blksize;
      this.held += full;
      if (got < count * this.params.blksize) {
        // The end: a short block, or an empty one when the size is a multiple of blksize.
        this.last = first + full;
        this.lengths[this.last % this.slots.length] = got - full * this.params.blksize;
        this.held++;
      }
    }
    this.sendHeld();
    this.state = 'awaiting-ack';
    this.arm();
  }

  /** A method, not a field test: the state changes across the awaits above. */
  private isDone(): boolean {
    return this.state === 'done';
  }

  private slot(block: number): Buffer {
    return this.slots[block % this.slots.length] as Buffer;
  }

  private sendHeld(): void {
    for (let b = this.base + 1; b <= this.base + this.held; b++) {
      const packet = this.slot(b);
      writeDataHeader(packet, b);
      this.transmit(packet.subarray(0, 4 + (this.lengths[b % this.slots.length] as number)));
    }
  }

  private transmit(packet: Buffer): void {
    this.sending++;
    this.io.send(packet, () => {
      if (--this.sending === 0 && this.afterSends) {
        const resume = this.afterSends;
        this.afterSends = undefined;
        resume();
      }
    });
  }

  /** Resend on our own timer, backing off, until the client has been silent for giveUpMs. */
  private arm(): void {
    clearTimeout(this.timer);
    const left = this.params.giveUpMs - (this.now() - this.progress.lastProgressAt);
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.min(this.interval, left)));
  }

  private onTimer(): void {
    if (this.state !== 'awaiting-ack' && this.state !== 'awaiting-oack-ack') return;
    if (this.now() - this.progress.lastProgressAt >= this.params.giveUpMs) return this.finish('stalled');
    this.retransmits++;
    if (this.state === 'awaiting-oack-ack') this.transmit(encodeOack(this.params.oack));
    else this.sendHeld();
    this.interval = Math.min(this.interval * 2, RETRANSMIT_MAX_MS);
    this.arm();
  }

  private finish(outcome: TransferOutcome): void {
    if (this.state === 'done') return;
    this.state = 'done';
    clearTimeout(this.timer);
    this.resolveEnd({ outcome, bytesSent: this.progress.bytesSent, retransmits: this.retransmits });
  }
}
