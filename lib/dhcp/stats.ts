// DHCP counters for /-/metrics: answers by client kind, ignored packets by reason.
import { counter, Tally, type MetricFamily } from '../observe/prometheus.js';
import { CLIENT_KINDS, IGNORE_REASONS, type ClientKind, type IgnoreReason } from './policy.js';

export class DhcpStats {
  readonly answers = new Tally<ClientKind>();
  readonly ignored = new Tally<IgnoreReason>();

  answered(kind: ClientKind): void {
    this.answers.add(kind);
  }

  ignoredFor(reason: IgnoreReason): void {
    this.ignored.add(reason);
  }

  families(): MetricFamily[] {
    return [
      counter('bootserve_dhcp_answers_total', 'proxyDHCP replies sent, by client kind.', this.answers.samples('client', CLIENT_KINDS)),
      counter('bootserve_dhcp_ignored_total', 'DHCP packets not answered, by reason.', this.ignored.samples('reason', IGNORE_REASONS)),
    ];
  }
}
