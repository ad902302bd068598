// HTTP counters for /-/metrics: responses by status and outcome, durations, rejected connections.
import { TRANSFER_OUTCOMES, type TransferOutcome } from '../observe/outcomes.js';
import { counter, gauge, Histogram, Tally, type MetricFamily } from '../observe/prometheus.js';
import type { Transfers } from '../observe/transfers.js';

export const REJECT_REASONS = ['max-connections', 'max-connections-per-ip'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** Upper bounds (seconds) of the transfer-duration histogram. */
export const DURATION_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800];

export class HttpStats {
  readonly byStatus = new Tally<number>();
  readonly byOutcome = new Tally<TransferOutcome>();
  readonly rejected = new Tally<RejectReason>();
  readonly durations = new Histogram(DURATION_BUCKETS);
  /** Body bytes of finished responses. */
  bytesSent = 0;
  /** Connections open now. */
  connections = 0;

  finished(status: number, outcome: TransferOutcome, bytesSent: number, durationMs: number): void {
    this.byStatus.add(status);
    this.byOutcome.add(outcome);
    this.bytesSent += bytesSent;
    this.durations.observe(durationMs / 1000);
  }

  /** Metric names stay as they were before TFTP and DHCP joined (dashboards use them). */
  families(transfers: Transfers): MetricFamily[] {
    const running = transfers.activeOf('http');
    const statuses = this.byStatus.keys().sort((a, b) => a - b);
    return [
      counter('bootserve_requests_total', 'Responses finished, by status code.', this.byStatus.samples('code', statuses)),
      counter(
        'bootserve_transfers_total',
        'Responses finished, by transfer outcome.',
        this.byOutcome.samples('outcome', TRANSFER_OUTCOMES),
      ),
      counter(
        'bootserve_sent_bytes_total',
        'Body bytes handed to the kernel.',
        this.bytesSent + running.reduce((n, t) => n + t.bytesSent, 0),
      ),
      gauge('bootserve_connections', 'Open client connections.', this.connections),
      gauge('bootserve_active_transfers', 'Responses being sent.', running.length),
      counter(
        'bootserve_rejected_connections_total',
        'Connections answered 503 and closed, by the cap they hit.',
        this.rejected.samples('reason', REJECT_REASONS),
      ),
      this.durations.family('bootserve_transfer_duration_seconds', 'Time from response start to its outcome.'),
    ];
  }
}
