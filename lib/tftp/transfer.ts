// One TFTP read transfer, from the first packet to the outcome. No sockets: packets go out
// through `send`, arrive through `receive`, blocks come from a BlockSource, so the whole protocol
// runs in tests under mock timers.
//
// The window's packets are held, each built once and sent (and resent) from its own buffer until
// the client acknowledges it. Only our own timer resends: a duplicate ACK is never an occasion to
// send (the Sorcerer's Apprentice bug, RFC 1123 4.2.3.1).
import type { TransferOutcome } from '../observe/outcomes.js';
import { monotonicNow, type TransferProgress } from '../observe/transfers.js';
import { encodeError, encodeOack, ErrorCode, writeDataHeader, type Packet } from './packet.js';
import type { BlockSource } from './source.js';

export type TransferState =
  /** OACK sent: nothing of the file goes out before the client's ACK 0. */
  | 'awaiting-oack-ack'
  /** Waiting for the file: the window goes out once its blocks are read. */
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
  /** The client's ERROR, when it ended the transfer with one. */
  clientError?: string;
}

export interface TransferIo {
  source: BlockSource;
  /** Packets are never changed once sent: no need to wait for the send. */
  send(packet: Buffer): void;
  /** Live figures for the operator's views, updated in place. */
  progress?: TransferProgress;
  now?: () => number;
}

const RETRANSMIT_MAX_MS = 16_000;
/**
 * A client that has acknowledged nothing yet is given up sooner: 3 packets in 7 s. A forged
 * request must not hold a transfer slot for 30 s, and firmware whose first packet was lost asks
 * again on its own (edk2 every 4 s, iPXE backing off from 0.25 s).
 */
export const FIRST_ACK_GIVE_UP_MS = 7000;

export class TftpTransfer {
  state: TransferState;
  retransmits = 0;
  /** Absolute number (no wrap) of the last block the client acknowledged. */
  private base = 0;
  /** DATA packets of blocks base+1, base+2, ... built and not yet acknowledged. */
  private held: Buffer[] = [];
  /** The last block's absolute number, once it is built. */
  private last: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private interval: number;
  /** Whether the client has acknowledged anything (ACK 0 after an OACK counts). */
  private acknowledged = false;
  private readonly progress: TransferProgress;
  private readonly now: () => number;
  private readonly ended: Promise<TransferEnd>;
  private resolveEnd!: (end: TransferEnd) => void;

  constructor(
    private readonly params: TransferParams,
    private readonly io: TransferIo,
  ) {
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
      this.io.send(encodeOack(this.params.oack));
      this.arm();
    } else this.fillAndSend(); // DATA 1: without options the window is one block
    return this.ended;
  }

  /** A packet from the client's TID. */
  receive(packet: Packet): void {
    if (this.state === 'done') return;
    // edk2's ERROR 8 after its tsize probe, too: it only wanted the size.
    if (packet.op === 'error') return this.finish('client-gone', `ERROR ${packet.code}: ${packet.message}`);
    if (packet.op !== 'ack') return;
    if (this.state === 'awaiting-oack-ack') {
      if (packet.block !== 0) return;
      this.moved();
      return this.fillAndSend();
    }
    // Which held block does it acknowledge? Block numbers wrap at 65536; anything outside the
    // held window (a duplicate, a stale or a future number) changes nothing.
    const step = (packet.block - this.base) & 0xffff;
    if (step < 1 || step > this.held.length) return;
    for (const acked of this.held.splice(0, step)) this.progress.bytesSent += acked.length - 4;
    this.base += step;
    this.moved();
    if (this.base === this.last) return this.finish('complete');
    // The rest of the window (if the client lost some of it) goes again, with new blocks behind
    // it (RFC 7440). While the file is being read, the read's end sends the window. A client that
    // acknowledged every block of a window would have the rest resent each time: edk2 and
    // atftp acknowledge the window's last block only.
    if (this.state === 'awaiting-ack') this.fillAndSend();
  }

  /** Stop now (server shutdown): the client is told, the outcome recorded. */
  abort(outcome: TransferOutcome, message: string): void {
    if (this.state === 'done') return;
    this.io.send(encodeError(ErrorCode.undefined, message));
    this.finish(outcome);
  }

  private moved(): void {
    this.acknowledged = true;
    this.progress.lastProgressAt = this.now();
    this.interval = this.params.retransmitMs;
  }

  /** Build the window's missing packets, waiting for the file if it must, then send them all. */
  private fillAndSend(): void {
    clearTimeout(this.timer);
    // Before the client has acknowledged anything it gets one packet and its resends (a window
    // exists only after an OACK, and data only after its ACK 0): a spoofed request must not turn
    // 50 bytes into a window of megabytes.
    while (this.last === undefined && this.held.length < this.params.windowsize) {
      const packet = this.io.source.next();
      if (packet === null) {
        this.state = 'reading';
        this.io.source.more().then(
          () => {
            if (!this.isDone()) this.fillAndSend();
          },
          (err: unknown) => {
            if (this.isDone()) return;
            this.io.send(encodeError(ErrorCode.undefined, err instanceof Error ? err.message : 'read error'));
            this.finish('read-error');
          },
        );
        return;
      }
      this.held.push(packet);
      writeDataHeader(packet, this.base + this.held.length);
      if (packet.length < 4 + this.params.blksize) this.last = this.base + this.held.length;
    }
    this.sendHeld();
    this.state = 'awaiting-ack';
    this.arm();
  }

  /** A method, not a field test: the state changes while the file is read. */
  private isDone(): boolean {
    return this.state === 'done';
  }

  private sendHeld(): void {
    for (const packet of this.held) this.io.send(packet);
  }

  /** Resend on our own timer, backing off, until the client has been silent for giveUpMs. */
  private arm(): void {
    clearTimeout(this.timer);
    const giveUpMs = this.acknowledged ? this.params.giveUpMs : Math.min(this.params.giveUpMs, FIRST_ACK_GIVE_UP_MS);
    const left = giveUpMs - (this.now() - this.progress.lastProgressAt);
    // Progress re-arms the timer, so a timer set for the deadline that fires is the give-up
    // (timers may fire a fraction of a millisecond early by our clock: no last resend then).
    const last = left <= this.interval;
    this.timer = setTimeout(() => this.onTimer(last), Math.max(0, Math.min(this.interval, left)));
  }

  private onTimer(deadline: boolean): void {
    if (this.state !== 'awaiting-ack' && this.state !== 'awaiting-oack-ack') return;
    if (deadline) return this.finish('stalled');
    this.retransmits++;
    if (this.state === 'awaiting-oack-ack') this.io.send(encodeOack(this.params.oack));
    else this.sendHeld();
    this.interval = Math.min(this.interval * 2, RETRANSMIT_MAX_MS);
    this.arm();
  }

  private finish(outcome: TransferOutcome, clientError?: string): void {
    if (this.state === 'done') return;
    this.state = 'done';
    clearTimeout(this.timer);
    this.resolveEnd({
      outcome,
      bytesSent: this.progress.bytesSent,
      retransmits: this.retransmits,
      ...(clientError === undefined ? {} : { clientError }),
    });
  }
}
