// DHCP counters for /-/metrics: answers by client kind, ignored packets by reason.
import { CLIENT_KINDS, IGNORE_REASONS, type ClientKind, type IgnoreReason } from './policy.js';

export class DhcpStats {
  readonly answers = new Map<ClientKind, number>();
  readonly ignored = new Map<IgnoreReason, number>();

  answered(kind: ClientKind): void {
    this.answers.set(kind, (this.answers.get(kind) ?? 0) + 1);
  }

  ignoredFor(reason: IgnoreReason): void {
    this.ignored.set(reason, (this.ignored.get(reason) ?? 0) + 1);
  }
}

/** Prometheus text lines (exposition format 0.0.4), every label present even at 0. */
export function dhcpMetricsLines(stats: DhcpStats): string[] {
  return [
    '# HELP bootserve_dhcp_answers_total proxyDHCP replies sent, by client kind.',
    '# TYPE bootserve_dhcp_answers_total counter',
    ...CLIENT_KINDS.map((kind) => `bootserve_dhcp_answers_total{client="${kind}"} ${stats.answers.get(kind) ?? 0}`),
    '# HELP bootserve_dhcp_ignored_total DHCP packets not answered, by reason.',
    '# TYPE bootserve_dhcp_ignored_total counter',
    ...IGNORE_REASONS.map((reason) => `bootserve_dhcp_ignored_total{reason="${reason}"} ${stats.ignored.get(reason) ?? 0}`),
  ];
}

export function dhcpMetricsText(stats: DhcpStats): string {
  return dhcpMetricsLines(stats).join('\n') + '\n';
}
