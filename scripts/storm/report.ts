// Figures from one storm per server: booted/N, time to the last boot, p50/p95 per phase,
// failures by phase and reason, the server's CPU and peak RSS; and the side-by-side table.
import { PHASES, type Firmware, type MachineResult, type Phase } from './machine.js';

export interface RunSummary {
  server: string;
  machines: number;
  booted: number;
  byFirmware: Record<Firmware, { booted: number; total: number }>;
  /** Seconds from the storm's start to the last boot. */
  lastBootS: number | undefined;
  phases: Partial<Record<Phase, { n: number; p50: number; p95: number }>>;
  failures: { phase: string; reason: string; count: number }[];
  serverCpuS: number;
  peakRssMb: number;
  clientCpuS: number;
  udpDrops: { server: number; clients: number };
  retries: number;
  paused: number;
  wallS: number;
  /** The simulator's event-loop delay (worst worker): every phase it times includes it. */
  clientLoop: { p99Ms: number; maxMs: number };
  /** Non-zero counters from the server's own metrics (bootserve only). */
  serverCounters: string[];
  /** Its whole /-/metrics at the end (bootserve only). */
  serverMetrics: string;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

export function summarize(
  server: string,
  results: MachineResult[],
  extra: Omit<RunSummary, 'server' | 'machines' | 'booted' | 'byFirmware' | 'lastBootS' | 'phases' | 'failures' | 'retries' | 'paused'>,
): RunSummary {
  const byFirmware = { uefi: { booted: 0, total: 0 }, bios: { booted: 0, total: 0 }, ipxe: { booted: 0, total: 0 } };
  const phases: RunSummary['phases'] = {};
  const failures = new Map<string, { phase: string; reason: string; count: number }>();
  let last: number | undefined;
  for (const r of results) {
    byFirmware[r.firmware].total++;
    if (r.outcome === 'booted') {
      byFirmware[r.firmware].booted++;
      last = Math.max(last ?? 0, r.bootedAtMs ?? 0);
    } else {
      const reason = (r.reason ?? '?').replace(/\(\d+ of \d+ bytes\)/, '(wrong bytes)');
      const key = `${r.failedIn}|${reason}`;
      const f = failures.get(key) ?? { phase: r.failedIn ?? '?', reason, count: 0 };
      f.count++;
      failures.set(key, f);
    }
  }
  for (const p of PHASES) {
    const times = results.flatMap((r) => (r.phases[p] === undefined ? [] : [r.phases[p] as number])).sort((a, b) => a - b);
    if (times.length) phases[p] = { n: times.length, p50: quantile(times, 0.5), p95: quantile(times, 0.95) };
  }
  return {
    server,
    machines: results.length,
    booted: results.filter((r) => r.outcome === 'booted').length,
    byFirmware,
    lastBootS: last === undefined ? undefined : last / 1000,
    phases,
    failures: [...failures.values()].sort((a, b) => b.count - a.count),
    retries: results.reduce((n, r) => n + r.retries, 0),
    paused: results.reduce((n, r) => n + r.paused, 0),
    ...extra,
  };
}

const s = (ms: number | undefined) => (ms === undefined || Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(2));

export function table(runs: RunSummary[]): string {
  const rows: [string, (r: RunSummary) => string][] = [
    ['booted', (r) => `${r.booted}/${r.machines}`],
    [
      '  uefi / bios / ipxe',
      (r) =>
        `${r.byFirmware.uefi.booted}/${r.byFirmware.uefi.total} · ` +
        `${r.byFirmware.bios.booted}/${r.byFirmware.bios.total} · ${r.byFirmware.ipxe.booted}/${r.byFirmware.ipxe.total}`,
    ],
    ['last boot (s)', (r) => (r.lastBootS === undefined ? '-' : r.lastBootS.toFixed(1))],
    ...PHASES.map((p): [string, (r: RunSummary) => string] => [
      `${p} p50 / p95 (s)`,
      (r) => (r.phases[p] ? `${s(r.phases[p]?.p50)} / ${s(r.phases[p]?.p95)}` : '-'),
    ]),
    ['firmware retries', (r) => String(r.retries)],
    ['503s waited out', (r) => String(r.paused)],
    ['server CPU (s)', (r) => `${(r.serverCpuS).toFixed(1)} (${((100 * r.serverCpuS) / r.wallS).toFixed(0)}% of ${r.wallS.toFixed(0)} s)`],
    ['server peak RSS (MB)', (r) => r.peakRssMb.toFixed(0)],
    ['simulator CPU (s)', (r) => r.clientCpuS.toFixed(1)],
    ['simulator loop delay p99 / max (ms)', (r) => `${r.clientLoop.p99Ms.toFixed(0)} / ${r.clientLoop.maxMs.toFixed(0)}`],
    ['UDP drops server / clients', (r) => `${r.udpDrops.server} / ${r.udpDrops.clients}`],
  ];
  const lines = [`| | ${runs.map((r) => r.server).join(' | ')} |`, `|---|${runs.map(() => '---').join('|')}|`];
  for (const [name, f] of rows) lines.push(`| ${name} | ${runs.map(f).join(' | ')} |`);
  for (const r of runs) {
    if (r.failures.length) {
      lines.push('', `${r.server}: failures`);
      for (const f of r.failures.slice(0, 12)) lines.push(`  ${String(f.count).padStart(5)}  ${f.phase}: ${f.reason}`);
    }
    if (r.serverCounters.length) {
      lines.push('', `${r.server}: non-zero counters`);
      for (const c of r.serverCounters) lines.push(`  ${c}`);
    }
  }
  return lines.join('\n');
}
