// How many of something each client address holds (connections, TFTP transfers), for per-client caps.

export class AddressCounter {
  private readonly counts = new Map<string, number>();

  /** Count one more for `address` if it holds fewer than `max`; false when it is at its cap. */
  acquire(address: string, max: number): boolean {
    const n = this.counts.get(address) ?? 0;
    if (n >= max) return false;
    this.counts.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    const left = (this.counts.get(address) ?? 1) - 1;
    if (left <= 0) this.counts.delete(address);
    else this.counts.set(address, left);
  }

  get(address: string): number {
    return this.counts.get(address) ?? 0;
  }

  /** Addresses holding at least one. */
  get size(): number {
    return this.counts.size;
  }
}
