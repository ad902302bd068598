// TFTP's own counters and their /-/metrics families (bootserve_tftp_*). The HTTP families keep
// their meaning; TFTP has things HTTP has not (refused requests, ignored datagrams, resends).
import { bump, family, type Metrics, type TransferOutcome } from '../metrics.js';

/** Why a request got an ERROR instead of a transfer. */
export type RefusalReason = 'not-found' | 'access-denied' | 'write-request' | 'unsupported-mode' | 'malformed' | 'open-failed';
/**
 * Why a request was left unanswered to be resent (pacing, never an ERROR for load): a cap on
 * transfers in all or per address, too many waiters already to remember it, no descriptor free.
 */
export type WaitCause = 'server-cap' | 'client-cap' | 'overflow' | 'descriptors';
/** Why a datagram was dropped without an answer. */
export type IgnoredReason = 'not-a-request' | 'duplicate-request' | 'malformed';

const OUTCOMES: TransferOutcome[] = ['complete', 'client-gone', 'stalled', 'read-error', 'shutdown'];
const REFUSALS: RefusalReason[] = ['not-found', 'access-denied', 'write-request', 'unsupported-mode', 'malformed', 'open-failed'];
const WAITS: WaitCause[] = ['server-cap', 'client-cap', 'overflow', 'descriptors'];
const IGNORED: IgnoredReason[] = ['not-a-request', 'duplicate-request', 'malformed'];

export class TftpStats {
  readonly transfersByOutcome = new Map<TransferOutcome, number>();
  readonly refused = new Map<RefusalReason, number>();
  readonly ignored = new Map<IgnoredReason, number>();
  /** File bytes acknowledged by clients of finished transfers. */
  bytesSent = 0;
  retransmissions = 0;
  readonly waited = new Map<WaitCause, number>();
  /** Requests admitted on a resend after waiting, and the longest such wait (ms). */
  admittedAfterWaiting = 0;
  longestAdmittedWaitMs = 0;
  /** Who waits now (set by the server). */
  queue: () => { waiting: number; oldestWaitMs: number } = () => ({ waiting: 0, oldestWaitMs: 0 });

  finished(outcome: TransferOutcome, bytesSent: number, retransmissions: number): void {
    bump(this.transfersByOutcome, outcome);
    this.bytesSent += bytesSent;
    this.retransmissions += retransmissions;
  }

  refuse(reason: RefusalReason): void {
    bump(this.refused, reason);
  }

  ignore(reason: IgnoredReason): void {
    bump(this.ignored, reason);
  }

  wait(cause: WaitCause): void {
    bump(this.waited, cause);
  }

  admittedAfter(waitedMs: number): void {
    this.admittedAfterWaiting++;
    this.longestAdmittedWaitMs = Math.max(this.longestAdmittedWaitMs, waitedMs);
  }

  /** Prometheus exposition lines; running transfers come from `metrics`. */
  metricsLines(metrics: Metrics): string[] {
    const active = metrics.activeOf('tftp');
    const lines: string[] = [];
    const labelled = (name: string, label: string, keys: string[], map: Map<string, number>) => keys.forEach((k) => lines.push(`${name}{${label}="${k}"} ${map.get(k) ?? 0}`));
    lines.push(...family('bootserve_tftp_transfers_total', 'counter', 'TFTP transfers finished, by outcome.'));
    labelled('bootserve_tftp_transfers_total', 'outcome', OUTCOMES, this.transfersByOutcome);
    lines.push(...family('bootserve_tftp_sent_bytes_total', 'counter', 'File bytes acknowledged by TFTP clients.'));
    lines.push(`bootserve_tftp_sent_bytes_total ${this.bytesSent + active.reduce((n, t) => n + t.bytesSent, 0)}`);
    lines.push(...family('bootserve_tftp_active_transfers', 'gauge', 'TFTP transfers running.'));
    lines.push(`bootserve_tftp_active_transfers ${active.length}`);
    lines.push(...family('bootserve_tftp_refused_requests_total', 'counter', 'TFTP requests answered with an ERROR, by reason.'));
    labelled('bootserve_tftp_refused_requests_total', 'reason', REFUSALS, this.refused);
    lines.push(...family('bootserve_tftp_ignored_packets_total', 'counter', 'Datagrams to the TFTP port dropped without an answer, by reason.'));
    labelled('bootserve_tftp_ignored_packets_total', 'reason', IGNORED, this.ignored);
    lines.push(...family('bootserve_tftp_retransmissions_total', 'counter', 'Times a TFTP window or OACK was sent again on our timer.'));
    lines.push(`bootserve_tftp_retransmissions_total ${this.retransmissions}`);
    const queue = this.queue();
    lines.push(...family('bootserve_tftp_paced_requests_total', 'counter', 'TFTP requests left unanswered to be resent (pacing, not refusal), by cause.'));
    labelled('bootserve_tftp_paced_requests_total', 'cause', WAITS, this.waited);
    lines.push(...family('bootserve_tftp_queue_waiting', 'gauge', 'TFTP clients waiting for a transfer slot.'));
    lines.push(`bootserve_tftp_queue_waiting ${queue.waiting}`);
    lines.push(...family('bootserve_tftp_queue_oldest_wait_seconds', 'gauge', 'How long the longest-waiting TFTP client has waited.'));
    lines.push(`bootserve_tftp_queue_oldest_wait_seconds ${(queue.oldestWaitMs / 1000).toFixed(3)}`);
    lines.push(...family('bootserve_tftp_admitted_after_wait_total', 'counter', 'TFTP requests admitted on a resend after waiting.'));
    lines.push(`bootserve_tftp_admitted_after_wait_total ${this.admittedAfterWaiting}`);
    lines.push(...family('bootserve_tftp_longest_wait_seconds', 'gauge', 'The longest wait of a TFTP request admitted so far.'));
    lines.push(`bootserve_tftp_longest_wait_seconds ${(this.longestAdmittedWaitMs / 1000).toFixed(3)}`);
    return lines;
  }
}
