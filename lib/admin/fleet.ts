// The operator page (/-/) as a picture of the fleet: how many machines are booting, waiting,
// done or failed; each machine's latest boot as a timeline (DHCP → boot program → script →
// kernel → initrd), each step with its duration and outcome, failures in red with the reason;
// then the transfers running and the last ones finished. Sizes, rates and durations in one
// human form; times in the reader's zone.
//
// One renderer for the server and the browser: the server renders the first picture (and the
// whole page without JavaScript), and the page's script re-renders it every 2 s from /-/status and
// /-/machines with these very functions, sent as their source text (Function.prototype.toString).
// So every function the renderer calls is a plain function declaration below (or in human.ts,
// stages.ts), and none may use anything else from outside its own body: no module constants.
import type { BootState, BootStep, MachineView } from '../observe/machines.js';
import { humanBytes, humanDuration, humanRate, plural } from '../observe/human.js';
import { stageOf } from '../observe/stages.js';
import type { ActiveView, FinishedTransfer } from '../observe/transfers.js';

/** What the picture is drawn from: /-/status and /-/machines as JSON, nothing else. */
export interface FleetData {
  status: FleetStatus;
  /** The latest machines, newest first (at most `limit` of them). */
  machines: MachineView[];
}

/** The parts of /-/status (pages.ts statusOf) the picture uses. */
export interface FleetStatus {
  version: string;
  /** The server's clock when it answered (ISO): "5 s ago" is measured against it, not the browser's. */
  now: string;
  root: string;
  uptimeSeconds: number;
  connections: number;
  active: ActiveView[];
  recent: FinishedTransfer[];
  /** Every machine known, by the state of its latest boot. */
  machines: { total: number } & Record<BootState, number>;
}

/** At most this many machines on the page (and 25 finished transfers); the rest are counted. */
export const PAGE_MACHINES = 50;

/** Text for HTML: element content and quoted attribute values. */
export function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A moment in the reader's zone and locale (the browser's; the host's when the server renders),
 * with the date only when it is not the day of `now`; the exact ISO time on hover.
 */
export function clock(iso: string, now: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return esc(iso);
  const time = at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const day = at.toDateString() === new Date(now).toDateString() ? '' : `${at.toLocaleDateString()} `;
  return `<time datetime="${esc(iso)}" title="${esc(iso)}">${esc(day + time)}</time>`;
}

/** How long ago, against the server's clock: "5.0 s ago". */
export function ago(iso: string, now: string): string {
  return `${humanDuration(Math.max(0, Date.parse(now) - Date.parse(iso)))} ago`;
}

/**
 * The firmware that started the boot, its architecture (option 93) and, for the signed chain,
 * its boot path: "UEFI PXE x64", "iPXE BIOS", "UEFI PXE ARM64, signed shim → GRUB".
 */
export function firmwareLabel(m: Pick<MachineView, 'firmware' | 'arch' | 'bootPath'>): string {
  const kinds: Record<string, string> = { 'bios-pxe': 'BIOS PXE', 'uefi-pxe': 'UEFI PXE', 'uefi-http': 'UEFI HTTP Boot', ipxe: 'iPXE' };
  const arches: Record<string, string> = {
    0: 'BIOS', 6: 'IA32', 7: 'x64', 9: 'x64', 10: 'ARM32', 11: 'ARM64', 15: 'IA32', 16: 'x64', 18: 'ARM32', 19: 'ARM64',
  };
  const kind = m.firmware === null ? '' : (kinds[m.firmware] ?? m.firmware);
  const arch = m.arch === null ? '' : (arches[m.arch] ?? `arch ${m.arch}`);
  // "BIOS PXE", not "BIOS PXE BIOS"; "iPXE BIOS" for a NIC's iPXE ROM.
  const label = [kind, kind.includes(arch) ? '' : arch].filter((x) => x !== '').join(' ') || 'firmware unknown';
  return m.bootPath === 'signed' ? `${label}, signed shim → GRUB` : label;
}

/** One step's figures: "1.0 MiB in 0.8 s · 1.2 MiB/s", or how far a failed one got. */
export function stepFigures(step: BootStep): string {
  if (step.bytes === undefined || step.durationMs === undefined) return '';
  const size = step.size ?? step.bytes;
  const sent = step.result === 'ok' || step.bytes === size ? humanBytes(step.bytes) : `${humanBytes(step.bytes)} of ${humanBytes(size)}`;
  const rate = step.durationMs >= 50 && step.bytes > 0 ? ` · ${humanRate((step.bytes * 1000) / step.durationMs)}` : '';
  return `${sent} in ${humanDuration(step.durationMs)}${rate}`;
}

/** A running transfer's progress: bar, percent, "12.0 of 30.0 MiB", rate, and a warning when it stands still. */
export function progressOf(t: ActiveView): string {
  const stillFor = humanDuration(t.secondsSinceProgress * 1000);
  const still = t.secondsSinceProgress >= 2 ? ` <span class="still">no progress for ${stillFor}</span>` : '';
  return (
    `<progress max="100" value="${t.percent}"></progress> ${t.percent.toFixed(1)}% · ` +
    `${humanBytes(t.bytesSent)} of ${humanBytes(t.bytesDue)} · ${humanRate(t.bytesPerSecond)}${still}`
  );
}

/** One table row of `cells` (HTML already), as <td> or <th>. */
export function row(cells: string[], tag: 'td' | 'th', className = ''): string {
  return `<tr${className ? ` class="${className}"` : ''}>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
}

/** The whole picture, as the HTML inside <main id="fleet">. */
export function renderFleet(data: FleetData): string {
  const s = data.status;
  const now = s.now;
  const columns: [string, string][] = [
    ['dhcp', 'DHCP'],
    ['boot-program', 'Boot program'],
    ['script', 'Script'],
    ['kernel', 'Kernel'],
    ['initrd', 'Initrd'],
  ];
  const states = ['booting', 'waiting', 'done', 'failed'] as const;
  const recentShown = 25;
  const name = (path: string) => {
    const clean = path.split('?')[0] ?? path;
    return clean.endsWith('/') ? clean : (clean.split('/').pop() ?? clean);
  };
  const fileCell = (path: string) => `<span class="file" title="${esc(path)}">${esc(name(path) || path)}</span>`;

  const header =
    `<header><h1>bootserve <small>${esc(s.version)}</small></h1>` +
    `<p class="meta">serving <code>${esc(s.root)}</code> · up ${humanDuration(s.uptimeSeconds * 1000)} · ` +
    `${plural(s.connections, 'connection')} · ${plural(s.active.length, 'transfer')} running · ` +
    `<a href="/-/status">status</a> · <a href="/-/machines">machines</a> · <a href="/-/metrics">metrics</a></p></header>`;

  const summary =
    `<section class="summary" aria-label="machines by state">` +
    states.map((st) => `<div class="count ${st}" data-state="${st}"><b>${s.machines[st]}</b> ${st}</div>`).join('') +
    `<div class="count total"><b>${s.machines.total}</b> ${s.machines.total === 1 ? 'machine' : 'machines'}</div></section>`;

  const machineCard = (m: MachineView) => {
    const running = s.active.filter((t) => m.address !== null && t.client === m.address);
    const state = m.state; // booting while a transfer of its runs (pages.ts)
    const boot = m.steps.filter((x) => Date.parse(x.time) >= Date.parse(m.bootStartedAt));
    const cells = columns.map(([stage, label]) => {
      const live = running.find((t) => stageOf(t.path).stage === stage);
      const step = m.timeline[stage as keyof MachineView['timeline']];
      const head = (time: string) => `<span class="label">${label}<span class="at">${time}</span></span>`;
      if (live) {
        return (
          `<li class="step running" data-stage="${stage}">${head(`running ${humanDuration(live.seconds * 1000)}`)}${fileCell(live.path)}` +
          `<span class="how">over ${live.protocol.toUpperCase()}</span><span class="figures">${progressOf(live)}</span></li>`
        );
      }
      if (!step) {
        // A NIC whose firmware is iPXE (QEMU's ROM, a flashed card) goes straight to the script.
        const skip = stage === 'boot-program' && m.firmware === 'ipxe' && m.timeline.script !== undefined;
        const how = skip ? 'none needed: the firmware is iPXE' : 'not yet';
        return `<li class="step pending" data-stage="${stage}">${head('')}<span class="how">${how}</span></li>`;
      }
      // Several files for one step (two initrds): every name, the last one's figures.
      const fetched = boot.filter((x) => x.stage === stage && x.result === 'ok' && x.file !== undefined);
      const names = [...new Set(fetched.map((x) => name(x.file as string)))];
      const what =
        step.file === undefined
          ? `<span class="file">${esc(step.step)}</span>`
          : step.result === 'ok' && names.length > 1
            ? `<span class="file" title="${esc(names.join(', '))}">${esc(names.join(' + '))}</span>`
            : fileCell(step.file);
      const over = step.protocol === 'dhcp' ? (step.file !== undefined ? esc(step.step) : '') : `over ${step.protocol.toUpperCase()}`;
      const outcome = step.result === 'failed' ? `<span class="reason">${esc(step.outcome)}</span>` : esc(step.outcome);
      return (
        `<li class="step ${step.result}" data-stage="${stage}">${head(clock(step.time, now))}${what}` +
        `<span class="how">${over}${over ? ' · ' : ''}${outcome}</span><span class="figures">${stepFigures(step)}</span></li>`
      );
    });
    const error = m.state === 'failed' && m.lastError ? m.lastError : null;
    const where = error?.file ? ` <code>${esc(error.file)}</code>` : '';
    const why = error ? `<p class="why">✗ ${esc(error.step)}${where}: ${esc(error.outcome)} (${clock(error.time, now)})</p>` : '';
    const others = boot.filter((x) => x.stage === 'other');
    const extra = others.length
      ? `<p class="others">also: ${others
          .slice(-4)
          .map((x) => `<span class="${x.result}">${esc(x.step)}${x.file ? ` ${fileCell(x.file)}` : ''} (${esc(x.outcome)})</span>`)
          .join(', ')}</p>`
      : '';
    return (
      `<article class="machine ${state}" data-mac="${esc(m.mac ?? '')}" data-address="${esc(m.address ?? '')}" data-state="${state}">` +
      `<div class="who"><span class="badge ${state}">${state}</span> <b>${esc(m.mac ?? m.address ?? '?')}</b>` +
      `${m.mac !== null && m.address !== null ? ` <span class="addr">${esc(m.address)}</span>` : ''} · ${esc(firmwareLabel(m))} · ` +
      `boot began ${clock(m.bootStartedAt, now)} · last seen ${ago(m.lastSeen, now)}</div>` +
      `<ol class="timeline">${cells.join('')}</ol>${why}${extra}</article>`
    );
  };
  const rest = s.machines.total - data.machines.length;
  const machines =
    `<h2>Machines</h2>` +
    (data.machines.length === 0 ? `<p class="empty">No machine has asked yet.</p>` : data.machines.map(machineCard).join('')) +
    (rest > 0 ? `<p class="more">and ${plural(rest, 'more machine')}: all of them in <a href="/-/machines">/-/machines</a></p>` : '');

  const activeRows = s.active.map((t) => {
    const cells = [t.protocol.toUpperCase(), esc(t.client), esc(stageOf(t.path).what), fileCell(t.path), progressOf(t)];
    return row([...cells, humanDuration(t.seconds * 1000)], 'td');
  });
  const active =
    `<h2>Running transfers</h2>` +
    (activeRows.length === 0
      ? `<p class="empty">None.</p>`
      : `<table>${row(['Over', 'Client', 'What', 'File', 'Progress', 'Running for'], 'th')}${activeRows.join('')}</table>`);

  const recentRows = s.recent.slice(0, recentShown).map((t) => {
    const what = stageOf(t.path).what;
    // Expected misses in grey: a browser's icon, a machine without a script of its own.
    const noise = what === 'browser noise' || (what === 'machine script' && t.status === 404);
    const failed = !noise && (t.outcome !== 'complete' || (t.status !== undefined && t.status >= 400));
    const result = t.status !== undefined && t.status >= 400 ? `${t.status}` : t.outcome;
    const step: BootStep = {
      ...{ time: t.finishedAt, protocol: t.protocol, stage: 'other', step: '', outcome: result, result: failed ? 'failed' : 'ok' },
      ...{ bytes: t.bytesSent, size: t.bytesDue, durationMs: t.durationMs },
    };
    const detail = t.detail ? ` <small>${esc(t.detail)}</small>` : '';
    const outcome = `<span class="result">${esc(result)}</span>${detail}`;
    const cells = [
      clock(t.finishedAt, now),
      t.protocol.toUpperCase(),
      esc(t.client),
      esc(what),
      fileCell(t.path),
      outcome,
      stepFigures(step),
    ];
    return row(cells, 'td', noise ? 'noise' : failed ? 'failed' : 'ok');
  });
  const hidden = s.recent.length - recentRows.length;
  const recent =
    `<h2>Finished transfers</h2>` +
    (recentRows.length === 0
      ? `<p class="empty">None yet.</p>`
      : `<table>${row(['Finished', 'Over', 'Client', 'What', 'File', 'Result', 'Sent'], 'th')}${recentRows.join('')}</table>`) +
    (hidden > 0 ? `<p class="more">and ${hidden} earlier in <a href="/-/status">/-/status</a></p>` : '');

  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const footer = `<footer>Times in ${esc(zone)} · as of ${clock(now, now)}</footer>`;
  return header + summary + machines + active + recent + footer;
}

/** The functions the browser needs, as source text, in an order where each is declared before use. */
const SHARED = [esc, humanBytes, humanRate, humanDuration, plural, clock, ago, firmwareLabel, stepFigures, progressOf, stageOf, row];

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:1em 1.5em;color:#1d1d1f;background:#fafafa}
h1{margin:0;font-size:1.4em}h1 small{color:#888;font-weight:normal}h2{font-size:1.1em;margin:1.2em 0 .5em}
.meta{margin:.2em 0 1em;color:#555}code{font-size:.95em}
.summary{display:flex;gap:.8em;flex-wrap:wrap}.count{padding:.4em .9em;border-radius:6px;background:#eee;min-width:5em}
.count b{font-size:1.5em;display:block}.count.booting{background:#e3efff}.count.waiting{background:#fff4d6}
.count.done{background:#e2f6e5}.count.failed{background:#fde2e1;color:#a00}
.machine{background:#fff;border:1px solid #ddd;border-left:5px solid #999;border-radius:6px;margin:.6em 0;padding:.5em .8em}
.machine.booting{border-left-color:#2a6fdb}.machine.waiting{border-left-color:#d9a400}.machine.done{border-left-color:#2e9e44}
.machine.failed{border-left-color:#c00}
.badge{display:inline-block;padding:0 .5em;border-radius:4px;font-size:.85em;color:#fff;background:#999}
.badge.booting{background:#2a6fdb}.badge.waiting{background:#b08600}.badge.done{background:#2e9e44}.badge.failed{background:#c00}
.addr{color:#555}.timeline{list-style:none;display:grid;grid-template-columns:repeat(5,1fr);gap:.5em;padding:0;margin:.5em 0 .2em}
.step{border-radius:5px;padding:.3em .5em;background:#f2f2f2;position:relative;min-width:0}
.step span{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.step .label{font-size:.75em;text-transform:uppercase;letter-spacing:.04em;color:#666}
.step .file{font-weight:600}.step .how,.step .figures{font-size:.85em;color:#444;white-space:normal}
.step .at{float:right;text-transform:none;letter-spacing:0}tr.noise{color:#999}
.step.ok{background:#e2f6e5}.step.running{background:#e3efff}.step.skipped{background:#f2f2f2}
.step.failed{background:#fde2e1}.step .how .reason{display:inline;color:#b00;font-weight:600;white-space:normal}
.step.pending{background:#f6f6f6;color:#999}
.step:not(:last-child)::after{content:"→";position:absolute;right:-.55em;top:35%;color:#aaa}
.why{color:#b00;margin:.3em 0 0;font-weight:600}.others{color:#666;font-size:.85em;margin:.2em 0 0}.others .failed{color:#b00}
.still{color:#a60;font-weight:600}progress{width:6em;vertical-align:middle}
table{border-collapse:collapse;background:#fff}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}
tr.failed .result{color:#b00;font-weight:600}.empty,.more{color:#777}footer{margin-top:1.5em;color:#888;font-size:.85em}
body.stale main{opacity:.6}
#offline{display:none;position:fixed;top:0;right:0;margin:.5em;padding:.3em .8em;border-radius:5px;background:#c00;color:#fff}
body.stale #offline{display:block}
@media (max-width:760px){.timeline{grid-template-columns:1fr}.step:not(:last-child)::after{content:none}}`;

/** The page: the first picture rendered here, then refreshed by its script (no full reload). */
export function fleetPage(data: FleetData): string {
  const script =
    `var __name = function (f) { return f; };\n` + // esbuild's keepNames (tsx, in the tests) calls it
    [...SHARED, renderFleet].map(String).join('\n') +
    `\n(function () {
  var main = document.getElementById('fleet');
  var busy = false;
  function json(url) {
    return fetch(url, { cache: 'no-store' }).then(function (r) { if (!r.ok) throw new Error(url + ': ' + r.status); return r.json(); });
  }
  function tick() {
    // Text being selected (to copy a MAC or a path) stays put until the selection ends.
    if (busy || (typeof getSelection === 'function' && String(getSelection()) !== '')) return;
    busy = true;
    Promise.all([json('/-/status'), json('/-/machines?limit=${PAGE_MACHINES}')])
      .then(function (got) {
        main.innerHTML = renderFleet({ status: got[0], machines: got[1] });
        main.setAttribute('data-rendered', 'browser');
        document.body.classList.remove('stale');
      })
      .catch(function () { document.body.classList.add('stale'); })
      .then(function () { busy = false; });
  }
  tick();
  setInterval(tick, 2000);
})();`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>bootserve</title><link rel="icon" href="data:,">
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>${STYLE}</style></head>
<body><p id="offline" role="status">bootserve does not answer: showing the last picture, trying again every 2 s</p>
<main id="fleet" data-rendered="server">${renderFleet(data)}</main>
<script>${script.replace(/<\//g, '<\\/')}</script>
</body></html>
`;
}
