// The operational surface under /-/: health, readiness, status (JSON), metrics (Prometheus),
// every machine's boot, and a small self-refreshing HTML page. Pure renderers over the running
// services' own reports (service.ts); the HTTP service routes to them.
import type { IncomingMessage } from 'node:http';
import { bodyReply, escapeHtml, textReply, unavailable, type Reply } from '../http/reply.js';
import type { Machines, MachineView } from '../observe/machines.js';
import { gauge, renderPrometheus } from '../observe/prometheus.js';
import type { Transfers } from '../observe/transfers.js';
import type { Service } from '../service.js';

export interface AdminState {
  version: string;
  /** The served directory. */
  root: string;
  /** The settings in force, shown as they are in /-/status. */
  settings: object;
  transfers: Transfers;
  ready: () => boolean;
  /** The running services, in start order. */
  services: () => readonly Service[];
  /** Every machine's boot, step by step (undefined: not kept). */
  machines?: Machines;
}

/** Answer a request under /-/. */
export function adminReply(req: IncomingMessage, state: AdminState): Reply {
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/-/healthy':
      return textReply(200, 'ok\n', {}, 'generated');
    case '/-/ready':
      return state.ready() ? textReply(200, 'ready\n', {}, 'generated') : unavailable();
    case '/-/status':
      return bodyReply(200, JSON.stringify(statusOf(state), null, 2) + '\n', 'application/json');
    case '/-/machines':
      return bodyReply(200, JSON.stringify(state.machines?.list() ?? [], null, 2) + '\n', 'application/json');
    case '/-/metrics':
      return bodyReply(200, metricsText(state), 'text/plain; version=0.0.4; charset=utf-8');
    case '/-':
    case '/-/':
      return bodyReply(200, statusPage(state), 'text/html; charset=utf-8');
    default:
      return textReply(404, 'Not Found');
  }
}

export function statusOf(state: AdminState) {
  const services = Object.fromEntries(state.services().map((s) => [s.name, s.status()]));
  const http = services.http as { connections?: number } | undefined;
  return {
    version: state.version,
    uptimeSeconds: Math.round((Date.now() - state.transfers.startedAt) / 1000),
    ready: state.ready(),
    config: state.settings,
    connections: http?.connections ?? 0,
    active: state.transfers.views(),
    recent: [...state.transfers.recent].reverse(),
    services,
  };
}

/** Every service's metric families, then the process's own. */
export function metricsText(state: AdminState): string {
  return renderPrometheus([
    ...state.services().flatMap((s) => s.metrics()),
    gauge('bootserve_process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', Math.floor(state.transfers.startedAt / 1000)),
  ]);
}

const esc = escapeHtml;
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
<p>Serving ${esc(state.root)} · up ${s.uptimeSeconds} s · ${s.connections} connections · ${s.active.length} transfers · <a href="/-/status">status</a> · <a href="/-/machines">machines</a> · <a href="/-/metrics">metrics</a></p>
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
