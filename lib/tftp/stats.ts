// TFTP's own counters and their /-/metrics families (bootserve_tftp_*). The HTTP families keep
// their meaning; TFTP has things HTTP has not (refused requests, ignored datagrams, resends).
import { bump, family, type Metrics, type TransferOutcome } from '../metrics.js';

/** Why a request got an ERROR instead of a transfer. */
export type RefusalReason = 'not-found' | 'access-denied' | 'write-request' | 'unsupported-mode' | 'malformed' | 'server-busy' | 'client-busy' | 'open-failed';
/** Why a datagram was dropped without an answer. */
export type IgnoredReason = 'not-a-request' | 'duplicate-request' | 'malformed';

const OUTCOMES: TransferOutcome[] = ['complete', 'client-gone', 'stalled', 'read-error', 'shutdown'];
const REFUSALS: RefusalReason[] = ['not-found', 'access-denied', 'write-request', 'unsupported-mode', 'malformed', 'server-busy', 'client-busy', 'open-failed'];
const IGNORED: IgnoredReason[] = ['not-a-request', 'duplicate-request', 'malformed'];

export class TftpStats {
  readonly transfersByOutcome = new Map<TransferOutcome, number>();
  readonly refused = new Map<RefusalReason, number>();
  readonly ignored = new Map<IgnoredReason, number>();
  /** File bytes acknowledged by clients of finished transfers. */
  bytesSent = 0;
  retransmissions = 0;

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
    return lines;
  }
}
