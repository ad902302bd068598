// The operational surface under /-/: health, readiness, status (JSON), metrics (Prometheus),
// every machine's boot, and the operator page (fleet.ts). Pure renderers over the running
// services' own reports (service.ts); the HTTP service routes to them, this module to the rest.
import type { IncomingMessage } from 'node:http';
import { bodyReply, textReply, unavailable, type Reply } from '../http/reply.js';
import type { BootState, Machines, MachineView } from '../observe/machines.js';
import { gauge, renderPrometheus } from '../observe/prometheus.js';
import type { Transfers } from '../observe/transfers.js';
import type { Service } from '../service.js';
import { fleetPage, PAGE_MACHINES } from './fleet.js';

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
  const [path, query] = (req.url ?? '/').split('?') as [string, string | undefined];
  switch (path) {
    case '/-/healthy':
      return textReply(200, 'ok\n', {}, 'generated');
    case '/-/ready':
      return state.ready() ? textReply(200, 'ready\n', {}, 'generated') : unavailable();
    case '/-/status':
      return bodyReply(200, JSON.stringify(statusOf(state), null, 2) + '\n', 'application/json');
    case '/-/machines':
      return bodyReply(200, JSON.stringify(machinesOf(state, new URLSearchParams(query).get('limit')), null, 2) + '\n', 'application/json');
    case '/-/metrics':
      return bodyReply(200, metricsText(state), 'text/plain; version=0.0.4; charset=utf-8');
    case '/-':
    case '/-/':
      return bodyReply(200, operatorPage(state), 'text/html; charset=utf-8');
    default:
      return textReply(404, 'Not Found');
  }
}

export function statusOf(state: AdminState) {
  const services = Object.fromEntries(state.services().map((s) => [s.name, s.status()]));
  const http = services.http as { connections?: number } | undefined;
  const machines = { total: 0, booting: 0, waiting: 0, done: 0, failed: 0 } satisfies Record<BootState | 'total', number>;
  for (const m of machinesNow(state)) {
    machines.total++;
    machines[m.state]++;
  }
  return {
    version: state.version,
    now: new Date().toISOString(),
    root: state.root,
    uptimeSeconds: Math.round((Date.now() - state.transfers.startedAt) / 1000),
    ready: state.ready(),
    config: state.settings,
    connections: http?.connections ?? 0,
    active: state.transfers.views(),
    recent: [...state.transfers.recent].reverse(),
    machines,
    services,
  };
}

/** The operator page (fleet.ts): its first picture, drawn here. */
function operatorPage(state: AdminState): string {
  return fleetPage({ status: statusOf(state), machines: machinesOf(state, String(PAGE_MACHINES)) });
}

/** Every machine, newest first; one with a transfer running is booting, whatever its last step said. */
function machinesNow(state: AdminState): MachineView[] {
  const busy = new Set([...state.transfers.active.values()].map((t) => t.client));
  return (state.machines?.list() ?? []).map((m) => (m.address !== null && busy.has(m.address) ? { ...m, state: 'booting' } : m));
}

/** The latest machines, newest first; `limit` (a query parameter) keeps the first so many. */
function machinesOf(state: AdminState, limit: string | null) {
  const all = machinesNow(state);
  const n = limit === null ? NaN : Number.parseInt(limit, 10);
  return Number.isInteger(n) && n >= 0 ? all.slice(0, n) : all;
}

/** Every service's metric families, then the process's own. */
export function metricsText(state: AdminState): string {
  return renderPrometheus([
    ...state.services().flatMap((s) => s.metrics()),
    gauge(
      'bootserve_process_start_time_seconds',
      'Start time of the process since the Unix epoch, in seconds.',
      Math.floor(state.transfers.startedAt / 1000),
    ),
  ]);
}
