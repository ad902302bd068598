// Bounded waiting, for every service's shutdown: the grace for work in flight, then a cut, then a
// bounded wait for the records of what was cut. Nothing here polls.

/** Resolves when `work` settles or after `ms`, whichever comes first; true if `work` settled. */
export function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void work.then(
      () => (clearTimeout(timer), resolve(true)),
      () => (clearTimeout(timer), resolve(true)),
    );
  });
}

/**
 * Promises still running, for a shutdown to wait on. `idle()` resolves once none is left (at
 * once if none is running now).
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();
  private waiters: (() => void)[] = [];

  track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    const done = () => {
      this.running.delete(work);
      if (this.running.size === 0) for (const wake of this.waiters.splice(0)) wake();
    };
    work.then(done, done);
    return work;
  }

  get size(): number {
    return this.running.size;
  }

  idle(): Promise<void> {
    return this.running.size === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * The common shape of a shutdown, once nothing new is taken: wait up to `graceMs` for what runs,
 * then `cut()` whatever is left (also idle connections) and wait up to `recordMs` for it to be
 * recorded.
 */
export async function drain(inFlight: InFlight, graceMs: number, cut: () => void, recordMs = 2000): Promise<void> {
  await within(inFlight.idle(), graceMs);
  cut();
  await within(inFlight.idle(), recordMs);
}
