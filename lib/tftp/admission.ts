// Which TFTP read requests start now and which wait: pacing, not refusal. Firmware treats any
// ERROR as a failed boot (edk2 moves to the next boot option), but resends an unanswered request
// after its timeout (edk2 every 4 s, 6 times; PXE ROMs alike; iPXE backing off from 0.25 s). So a
// request beyond a cap is not answered: its client is remembered with the time it was first
// seen, and its resend starts the transfer once a slot is free, first come first served. No
// sockets, no timers: the clock is injected, so the order is tested exactly.

export interface AdmissionLimits {
  /** Transfers starting or running at once (--tftp-max-transfers). */
  maxTransfers: number;
  /** Per client address (--tftp-max-per-client). */
  maxPerClient: number;
  /** Clients remembered as waiting; beyond it a request is dropped unremembered (a flood). */
  maxWaiters: number;
  /**
   * A waiter not heard from for this long has given up (or was forged): it is forgotten and
   * holds no place. Longer than any firmware's resend interval.
   */
  forgetAfterMs: number;
}

export type Admitted =
  /** Start the transfer. */
  | { kind: 'admit'; waitedMs: number }
  /** Do not answer: the client's resend will be looked at again. */
  | { kind: 'wait'; cause: 'server' | 'client'; position: number }
  /** Too many waiters already: not answered, not remembered. */
  | { kind: 'overflow' };

interface Waiter {
  address: string;
  firstSeen: number;
  lastSeen: number;
}

export class TftpAdmission {
  private running = 0;
  private readonly perAddress = new Map<string, number>();
  /** In order of arrival (Map keeps insertion order): the head is served first. */
  private readonly waiters = new Map<string, Waiter>();

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * An RRQ from `key` (address and port: one firmware transfer) at `address`. Admitted: the
   * caller must call release(address) once the transfer has ended.
   */
  request(key: string, address: string): Admitted {
    const now = this.now();
    this.forgetSilent(now);
    const waiter = this.waiters.get(key);
    if (waiter) waiter.lastSeen = now;
    // Clients ahead of this one, by arrival, that could take a free slot now (one held back by
    // its own address's cap holds no slot for others).
    let ahead = 0;
    for (const [k, w] of this.waiters) {
      if (k === key) break;
      if ((this.perAddress.get(w.address) ?? 0) < this.limits.maxPerClient) ahead++;
    }
    const free = this.limits.maxTransfers - this.running;
    const clientFull = (this.perAddress.get(address) ?? 0) >= this.limits.maxPerClient;
    if (!clientFull && ahead < free) {
      this.waiters.delete(key);
      this.running++;
      this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
      return { kind: 'admit', waitedMs: waiter ? now - waiter.firstSeen : 0 };
    }
    if (!waiter) {
      if (this.waiters.size >= this.limits.maxWaiters) return { kind: 'overflow' };
      this.waiters.set(key, { address, firstSeen: now, lastSeen: now });
    }
    return { kind: 'wait', cause: clientFull ? 'client' : 'server', position: ahead };
  }

  /** A transfer admitted for `address` has ended. */
  release(address: string): void {
    this.running = Math.max(0, this.running - 1);
    const left = (this.perAddress.get(address) ?? 1) - 1;
    if (left <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, left);
  }

  /** Transfers starting or running. */
  get active(): number {
    return this.running;
  }

  /** Clients waiting now, and how long the oldest of them has waited (ms). */
  queue(): { waiting: number; oldestWaitMs: number } {
    const now = this.now();
    this.forgetSilent(now);
    const head = this.waiters.values().next().value as Waiter | undefined;
    return { waiting: this.waiters.size, oldestWaitMs: head ? now - head.firstSeen : 0 };
  }

  private forgetSilent(now: number): void {
    for (const [key, w] of this.waiters) if (now - w.lastSeen > this.limits.forgetAfterMs) this.waiters.delete(key);
  }
}
