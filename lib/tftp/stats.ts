// TFTP counters for /-/metrics: transfers by outcome, refusals and ignored datagrams by reason.
import { TRANSFER_OUTCOMES, type TransferOutcome } from '../observe/outcomes.js';
import { counter, gauge, Tally, type MetricFamily } from '../observe/prometheus.js';
import type { Transfers } from '../observe/transfers.js';

/** Why a request got an ERROR instead of a transfer. */
export const REFUSAL_REASONS = ['not-found', 'access-denied', 'write-request', 'unsupported-mode', 'malformed', 'open-failed'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];
/**
 * Why a request was left unanswered to be resent (pacing, never an ERROR for load): a cap on
 * transfers in all or per address, too many waiters already to remember it, no descriptor free.
 */
export const WAIT_CAUSES = ['server-cap', 'client-cap', 'overflow', 'descriptors'] as const;
export type WaitCause = (typeof WAIT_CAUSES)[number];

/** Who waits for a transfer slot now. */
export interface QueueFigures {
  waiting: number;
  oldestWaitMs: number;
}
/** Why a datagram was dropped without an answer. */
export const IGNORED_REASONS = ['not-a-request', 'duplicate-request', 'malformed'] as const;
export type IgnoredReason = (typeof IGNORED_REASONS)[number];

export class TftpStats {
  readonly byOutcome = new Tally<TransferOutcome>();
  readonly refused = new Tally<RefusalReason>();
  readonly ignored = new Tally<IgnoredReason>();
  /** File bytes acknowledged by clients of finished transfers. */
  bytesSent = 0;
  retransmissions = 0;
  readonly waited = new Tally<WaitCause>();
  /** Requests admitted on a resend after waiting, and the longest such wait (ms). */
  admittedAfterWaiting = 0;
  longestAdmittedWaitMs = 0;

  finished(outcome: TransferOutcome, bytesSent: number, retransmissions: number): void {
    this.byOutcome.add(outcome);
    this.bytesSent += bytesSent;
    this.retransmissions += retransmissions;
  }

  refuse(reason: RefusalReason): void {
    this.refused.add(reason);
  }

  ignore(reason: IgnoredReason): void {
    this.ignored.add(reason);
  }

  wait(cause: WaitCause): void {
    this.waited.add(cause);
  }

  admittedAfter(waitedMs: number): void {
    this.admittedAfterWaiting++;
    this.longestAdmittedWaitMs = Math.max(this.longestAdmittedWaitMs, waitedMs);
  }

  /** Running transfers come from `transfers`. */
  families(transfers: Transfers, queue: QueueFigures = { waiting: 0, oldestWaitMs: 0 }): MetricFamily[] {
    const active = transfers.activeOf('tftp');
    return [
      counter(
        'bootserve_tftp_transfers_total',
        'TFTP transfers finished, by outcome.',
        this.byOutcome.samples('outcome', TRANSFER_OUTCOMES),
      ),
      counter(
        'bootserve_tftp_sent_bytes_total',
        'File bytes acknowledged by TFTP clients.',
        this.bytesSent + active.reduce((n, t) => n + t.bytesSent, 0),
      ),
      gauge('bootserve_tftp_active_transfers', 'TFTP transfers running.', active.length),
      counter(
        'bootserve_tftp_refused_requests_total',
        'TFTP requests answered with an ERROR, by reason.',
        this.refused.samples('reason', REFUSAL_REASONS),
      ),
      counter(
        'bootserve_tftp_ignored_packets_total',
        'Datagrams to the TFTP port dropped without an answer, by reason.',
        this.ignored.samples('reason', IGNORED_REASONS),
      ),
      counter('bootserve_tftp_retransmissions_total', 'Times a TFTP window or OACK was sent again on our timer.', this.retransmissions),
      counter(
        'bootserve_tftp_paced_requests_total',
        'TFTP requests left unanswered to be resent (pacing), by cause.',
        this.waited.samples('cause', WAIT_CAUSES),
      ),
      gauge('bootserve_tftp_queue_waiting', 'TFTP clients waiting for a transfer slot.', queue.waiting),
      gauge('bootserve_tftp_queue_oldest_wait_seconds', 'How long the oldest TFTP waiter has waited.', queue.oldestWaitMs / 1000),
      counter('bootserve_tftp_admitted_after_wait_total', 'TFTP requests admitted on a resend after waiting.', this.admittedAfterWaiting),
      gauge('bootserve_tftp_longest_wait_seconds', 'The longest wait of an admitted TFTP request.', this.longestAdmittedWaitMs / 1000),
    ];
  }
}
