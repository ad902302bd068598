// The operational surface under /-/: health, readiness, status (JSON), metrics (Prometheus) and
// a small self-refreshing HTML page. Pure renderers over Metrics; the server routes to them.
import type { IncomingMessage } from 'node:http';
import type { Config } from '../cli.js';
import { bodyReply, textReply, type Reply } from './handler.js';
import type { Machines, MachineView } from '../machines.js';
import { DURATION_BUCKETS, family, viewOf, type Metrics } from '../metrics.js';

export interface AdminState {
  version: string;
  config: Config;
  metrics: Metrics;
  ready: () => boolean;
  /** Every machine's boot, step by step (undefined: not kept). */
  machines?: Machines;
  /** Metric families of the other services (TFTP, DHCP), already in exposition format. */
  moreMetrics?: () => string[];
}

/** Answer a request under /-/. */
export function adminReply(req: IncomingMessage, state: AdminState): Reply {
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/-/healthy':
      return textReply(200, 'ok\n', {}, 'generated');
    case '/-/ready':
      return state.ready() ? textReply(200, 'ready\n', {}, 'generated') : textReply(503, 'Service Unavailable', { 'Retry-After': '5' });
    case '/-/status':
      return bodyReply(200, JSON.stringify(statusOf(state), null, 2) + '\n', 'application/json');
    case '/-/machines':
      return bodyReply(200, JSON.stringify(state.machines?.list() ?? [], null, 2) + '\n', 'application/json');
    case '/-/metrics':
      return bodyReply(200, metricsText(state.metrics, state.moreMetrics?.() ?? []), 'text/plain; version=0.0.4; charset=utf-8');
    case '/-':
    case '/-/':
      return bodyReply(200, statusPage(state), 'text/html; charset=utf-8');
    default:
      return textReply(404, 'Not Found');
  }
}

export function statusOf(state: AdminState) {
  const { metrics, config } = state;
  return {
    version: state.version,
    uptimeSeconds: Math.round((Date.now() - metrics.startedAt) / 1000),
    ready: state.ready(),
    config,
    connections: metrics.connections,
    active: [...metrics.active.values()].map((t) => viewOf(t)),
    recent: [...metrics.recent].reverse(),
  };
}

/** Prometheus text exposition format, version 0.0.4. */
export function metricsText(m: Metrics, more: string[] = []): string {
  const lines: string[] = [];
  const http = m.activeOf('http');
  lines.push(...family('bootserve_requests_total', 'counter', 'Responses finished, by status code.'));
  for (const [code, n] of [...m.requestsByStatus].sort((a, b) => a[0] - b[0])) lines.push(`bootserve_requests_total{code="${code}"} ${n}`);
  lines.push(...family('bootserve_transfers_total', 'counter', 'Responses finished, by transfer outcome.'));
  for (const outcome of ['complete', 'client-gone', 'stalled', 'read-error', 'shutdown'] as const) lines.push(`bootserve_transfers_total{outcome="${outcome}"} ${m.transfersByOutcome.get(outcome) ?? 0}`);
  lines.push(...family('bootserve_sent_bytes_total', 'counter', 'Body bytes handed to the kernel.'));
  lines.push(`bootserve_sent_bytes_total ${m.bytesSent + http.reduce((n, t) => n + t.bytesSent, 0)}`);
  lines.push(...family('bootserve_connections', 'gauge', 'Open client connections.'));
  lines.push(`bootserve_connections ${m.connections}`);
  lines.push(...family('bootserve_active_transfers', 'gauge', 'Responses being sent.'));
  lines.push(`bootserve_active_transfers ${http.length}`);
  lines.push(...family('bootserve_rejected_connections_total', 'counter', 'Connections answered 503 and closed, by the cap they hit.'));
  for (const reason of ['max-connections', 'max-connections-per-ip'] as const) lines.push(`bootserve_rejected_connections_total{reason="${reason}"} ${m.rejected.get(reason) ?? 0}`);
  lines.push(...family('bootserve_transfer_duration_seconds', 'histogram', 'Time from response start to its outcome.'));
  let cumulative = 0;
  DURATION_BUCKETS.forEach((le, i) => {
    cumulative += m.durationCounts[i] as number;
    lines.push(`bootserve_transfer_duration_seconds_bucket{le="${le}"} ${cumulative}`);
  });
  cumulative += m.durationCounts[DURATION_BUCKETS.length] as number;
  lines.push(`bootserve_transfer_duration_seconds_bucket{le="+Inf"} ${cumulative}`);
  lines.push(`bootserve_transfer_duration_seconds_sum ${m.durationSum}`);
  lines.push(`bootserve_transfer_duration_seconds_count ${cumulative}`);
  lines.push(...family('bootserve_process_start_time_seconds', 'gauge', 'Start time of the process since the Unix epoch, in seconds.'));
  lines.push(`bootserve_process_start_time_seconds ${Math.floor(m.startedAt / 1000)}`);
  return [...lines, ...more].join('\n') + '\n';
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const mib = (n: number) => (n / 1048576).toFixed(1);

function statusPage(state: AdminState): string {
  const s = statusOf(state);
  const active = s.active
    .map((t) => `<tr><td>${t.protocol}</td><td>${esc(t.client)}</td><td>${esc(t.path)}</td><td>${t.range ? esc(t.range) : ''}</td><td><progress max="100" value="${t.percent}"></progress> ${t.percent}%</td><td>${mib(t.bytesSent)} / ${mib(t.bytesDue)} MiB</td><td>${mib(t.bytesPerSecond)} MiB/s</td><td>${t.secondsSinceProgress} s</td></tr>`)
    .join('\n');
  const recent = s.recent
    .map((t) => `<tr><td>${esc(t.finishedAt)}</td><td>${t.protocol}</td><td>${esc(t.client)}</td><td>${esc(t.path)}</td><td>${t.status ?? esc(t.detail ?? '')}</td><td class="${t.outcome}">${t.outcome}</td><td>${t.bytesSent} / ${t.bytesDue}</td><td>${t.durationMs} ms</td></tr>`)
    .join('\n');
  const machines = (state.machines?.list() ?? []).slice(0, 50).map(machineRow).join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>bootserve</title>
<style>body{font:14px system-ui,sans-serif;margin:1em}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}tr:nth-child(even){background:#f4f4f4}.stalled,.read-error{color:#b00}.client-gone,.shutdown{color:#a60}</style></head>
<body><h1>bootserve ${esc(s.version)}</h1>
<p>Serving ${esc(state.config.root)} · up ${s.uptimeSeconds} s · ${s.connections} connections · ${s.active.length} transfers · <a href="/-/status">status</a> · <a href="/-/machines">machines</a> · <a href="/-/metrics">metrics</a></p>
<h2>Active transfers</h2>
<table><tr><th>Protocol</th><th>Client</th><th>Path</th><th>Range</th><th>Progress</th><th>Sent</th><th>Rate</th><th>Since progress</th></tr>
${active}</table>
<h2>Recent transfers</h2>
<table><tr><th>Finished</th><th>Protocol</th><th>Client</th><th>Path</th><th>Status</th><th>Outcome</th><th>Bytes</th><th>Duration</th></tr>
${recent}</table>
<h2>Machines</h2>
<table><tr><th>MAC</th><th>Address</th><th>Firmware</th><th>Arch</th><th>Last seen</th><th>Latest steps</th><th>Last error</th></tr>
${machines}</table>
</body></html>
`;
}

/** One machine: its latest steps, newest last, and its last error. */
function machineRow(m: MachineView): string {
  const step = (s: MachineView['steps'][number]) => `${esc(s.time.slice(11, 19))} ${esc(s.step)}${s.file ? ` ${esc(s.file)}` : ''}: <span class="${esc(s.outcome)}">${esc(s.outcome)}</span>`;
  const steps = m.steps.slice(-5).map(step).join('<br>');
  return `<tr><td>${esc(m.mac ?? '-')}</td><td>${esc(m.address ?? '-')}</td><td>${esc(m.firmware ?? '-')}</td><td>${m.arch ?? '-'}</td><td>${esc(m.lastSeen)}</td><td>${steps}</td><td class="stalled">${m.lastError ? step(m.lastError) : ''}</td></tr>`;
}
