// The one way tests wait for something that happens on its own time (a log line, a counter, a
// closed descriptor): poll a check, bounded, instead of sleeping a fixed time and hoping.
import { AssertionError } from 'node:assert';

export interface EventuallyOptions {
  /** Give up after this long (default 5 s: generous, a passing check returns at once). */
  timeoutMs?: number;
  /** Between two checks (default 10 ms). */
  intervalMs?: number;
  /** What is awaited, for the failure message. */
  what?: string;
}

/**
 * Run `check` until it passes: returns without throwing and with something other than `false`.
 * Resolves with what it returned; after `timeoutMs` rejects with the check's last assertion error
 * (so the failure shows the values), or a timeout naming `what`. Real time: not for mocked timers.
 */
export async function eventually<T>(check: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<Exclude<T, false>> {
  const { timeoutMs = 5000, intervalMs = 10, what } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      const result = await check();
      if (result !== false) return result as Exclude<T, false>;
    } catch (err) {
      failure = err;
    }
    if (Date.now() >= deadline) {
      if (failure !== undefined) throw failure;
      throw new AssertionError({ message: `timed out after ${timeoutMs} ms waiting for ${what ?? String(check)}` });
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
