// What the server has done and is doing: counters for /-/metrics, live transfers for /-/status.

/** How a transfer ended; `shutdown`: still running when the shutdown grace ran out. */
export type TransferOutcome = 'complete' | 'client-gone' | 'stalled' | 'read-error' | 'shutdown';

/** Live figures of one transfer, updated in place (read by the admin pages, never copied). */
export interface TransferProgress {
  /** Body bytes handed to the socket so far. */
  bytesSent: number;
  /** When (ms since the epoch, by `now`) the client last showed it is taking bytes. */
  lastProgressAt: number;
}

/**
 * Monotonic milliseconds on the epoch scale: a wall-clock step (NTP at boot) must neither cut
 * a healthy transfer nor hold a stalled one.
 */
export const monotonicNow = () => performance.timeOrigin + performance.now();

/** The services whose transfers are listed side by side in /-/status and the live view. */
export type Protocol = 'http' | 'tftp';

export interface ActiveTransfer extends TransferProgress {
  id: number;
  protocol: Protocol;
  client: string;
  path: string;
  /** "bytes a-b/size" for a partial response, else undefined. */
  range: string | undefined;
  bytesDue: number;
  startedAt: number;
}

export interface FinishedTransfer {
  protocol: Protocol;
  client: string;
  path: string;
  range: string | undefined;
  /** HTTP status; undefined for TFTP. */
  status: number | undefined;
  /** Protocol details worth a glance (TFTP: block and window size). */
  detail?: string;
  outcome: TransferOutcome;
  bytesSent: number;
  bytesDue: number;
  durationMs: number;
  finishedAt: string;
}

export type RejectReason = 'max-connections' | 'max-connections-per-ip';

/** Upper bounds (seconds) of the transfer-duration histogram. */
export const DURATION_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800];
const RECENT = 100;

export class Metrics {
  readonly startedAt = Date.now();
  readonly requestsByStatus = new Map<number, number>();
  readonly transfersByOutcome = new Map<TransferOutcome, number>();
  readonly rejected = new Map<RejectReason, number>();
  readonly durationCounts = new Array<number>(DURATION_BUCKETS.length + 1).fill(0);
  durationSum = 0;
  bytesSent = 0;
  connections = 0;
  readonly active = new Map<number, ActiveTransfer>();
  readonly recent: FinishedTransfer[] = [];
  private nextId = 1;

  begin(t: Omit<ActiveTransfer, 'id' | 'startedAt' | 'bytesSent' | 'lastProgressAt' | 'protocol'> & { protocol?: Protocol }): ActiveTransfer {
    const now = Date.now();
    const transfer: ActiveTransfer = { protocol: 'http', ...t, id: this.nextId++, startedAt: now, bytesSent: 0, lastProgressAt: now };
    this.active.set(transfer.id, transfer);
    return transfer;
  }

  /** Count a finished HTTP response; `listed` adds it to the recent transfers. */
  end(t: ActiveTransfer, status: number, outcome: TransferOutcome, listed = true): FinishedTransfer {
    const finished = this.record(t, outcome, { status }, listed);
    const { durationMs } = finished;
    bump(this.requestsByStatus, status);
    bump(this.transfersByOutcome, outcome);
    this.bytesSent += t.bytesSent;
    const seconds = durationMs / 1000;
    this.durationSum += seconds;
    let i = DURATION_BUCKETS.findIndex((le) => seconds <= le);
    if (i < 0) i = DURATION_BUCKETS.length;
    this.durationCounts[i] = (this.durationCounts[i] as number) + 1;
    return finished;
  }

  /** A finished transfer of a service that keeps its own counters (TFTP): listed, not counted here. */
  record(t: ActiveTransfer, outcome: TransferOutcome, extra: { status?: number; detail?: string } = {}, listed = true): FinishedTransfer {
    this.active.delete(t.id);
    const finished: FinishedTransfer = {
      protocol: t.protocol,
      client: t.client,
      path: t.path,
      range: t.range,
      status: extra.status,
      ...(extra.detail === undefined ? {} : { detail: extra.detail }),
      outcome,
      bytesSent: t.bytesSent,
      bytesDue: t.bytesDue,
      durationMs: Date.now() - t.startedAt,
      finishedAt: new Date().toISOString(),
    };
    if (listed) {
      this.recent.push(finished);
      if (this.recent.length > RECENT) this.recent.shift();
    }
    return finished;
  }

  /** Transfers of one protocol running now. */
  activeOf(protocol: Protocol): ActiveTransfer[] {
    return [...this.active.values()].filter((t) => t.protocol === protocol);
  }

  reject(reason: RejectReason): void {
    bump(this.rejected, reason);
  }
}

/** The HELP and TYPE lines that open a Prometheus metric family. */
export function family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
}

export function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

export interface ActiveView {
  protocol: Protocol;
  client: string;
  path: string;
  range: string | null;
  bytesSent: number;
  bytesDue: number;
  percent: number;
  bytesPerSecond: number;
  secondsSinceProgress: number;
  seconds: number;
}

/** A live view of one transfer; the rate is measured between successive looks, at most 1/s. */
const rates = new WeakMap<ActiveTransfer, { bytes: number; at: number; rate: number }>();
export function viewOf(t: ActiveTransfer, now = Date.now()): ActiveView {
  let sample = rates.get(t);
  if (!sample) {
    sample = { bytes: 0, at: t.startedAt, rate: 0 };
    rates.set(t, sample);
  }
  if (now - sample.at >= 1000) {
    sample.rate = ((t.bytesSent - sample.bytes) * 1000) / (now - sample.at);
    sample.bytes = t.bytesSent;
    sample.at = now;
  }
  return {
    protocol: t.protocol,
    client: t.client,
    path: t.path,
    range: t.range ?? null,
    bytesSent: t.bytesSent,
    bytesDue: t.bytesDue,
    percent: t.bytesDue > 0 ? Math.floor((t.bytesSent / t.bytesDue) * 1000) / 10 : 100,
    bytesPerSecond: Math.round(sample.rate),
    secondsSinceProgress: Math.max(0, Math.round((monotonicNow() - t.lastProgressAt) / 100) / 10),
    seconds: Math.round((now - t.startedAt) / 100) / 10,
  };
}

