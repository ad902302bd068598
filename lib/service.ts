// The contract every service meets (HTTP, TFTP, proxyDHCP, the admin listener): the builder
// (app.ts) starts them in order, the process prints their banner lines, the admin pages gather
// their metrics and status, and shutdown stops them all within a bound. Like Go's http.Server
// with ListenAndServe and Shutdown: the same few calls, whatever the protocol.
import type { MetricFamily } from './observe/prometheus.js';

export interface BannerLine {
  level: 'info' | 'warn';
  text: string;
}

export interface Service {
  /** Short and stable: the key of its part in /-/status. */
  readonly name: string;
  /** Bind its sockets. Rejects with a BindError (net/bind.ts) whose message is one line. */
  start(): Promise<void>;
  /** What it tells the operator once started: where it listens, what it serves. */
  banner(): BannerLine[];
  /** Its metric families for /-/metrics. */
  metrics(): MetricFamily[];
  /** Its part of /-/status: plain data, serialised as JSON. */
  status(): Record<string, unknown>;
  /**
   * Take nothing new; let work in flight finish for up to `graceMs`, then cut it. Resolves once
   * every record of it is written, within a bound of its own: never hangs.
   */
  shutdown(graceMs: number): Promise<void>;
}

export const info = (text: string): BannerLine => ({ level: 'info', text });
export const warn = (text: string): BannerLine => ({ level: 'warn', text });
