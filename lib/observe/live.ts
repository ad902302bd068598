// On a terminal, a compact live line per active transfer under the log, redrawn four times a
// second; anywhere else (journald, pipes) only plain log lines.
import type { Writable } from 'node:stream';
import { humanRate } from './human.js';
import type { Transfers } from './transfers.js';

export interface LiveView {
  /** Write one log line (above the live block, when there is one). */
  print(line: string): void;
  start(transfers: Transfers): void;
  stop(): void;
}

const MAX_LINES = 8;
const REDRAW_MS = 250;

type Terminal = Writable & { isTTY?: boolean; columns?: number };

export function createLiveView(out: Terminal, enabled: boolean): LiveView {
  if (!enabled || !out.isTTY) {
    return { print: (line) => void out.write(line + '\n'), start: () => {}, stop: () => {} };
  }
  let drawn: string[] = [];
  let transfers: Transfers | undefined;
  let timer: NodeJS.Timeout | undefined;

  const erase = () => (drawn.length ? `\x1b[${drawn.length}A\r\x1b[J` : '');
  const redraw = (prefix = '') => {
    const lines = transfers ? renderLines(transfers, out.columns ?? 100) : [];
    if (prefix === '' && lines.length === 0 && drawn.length === 0) return;
    out.write(erase() + prefix + lines.map((l) => l + '\n').join(''));
    drawn = lines;
  };
  return {
    print: (line) => redraw(line + '\n'),
    start: (m) => {
      transfers = m;
      timer = setInterval(() => redraw(), REDRAW_MS).unref();
    },
    stop: () => {
      clearInterval(timer);
      transfers = undefined;
      redraw();
    },
  };
}

/** One line per active transfer: path, client, bar, percent, rate. */
export function renderLines(transfers: Transfers, columns: number): string[] {
  const views = transfers.views();
  const lines = views.slice(0, MAX_LINES).map((v) => {
    const width = 20;
    const filled = Math.round((v.percent / 100) * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const rate = humanRate(v.bytesPerSecond);
    const line = `  ${v.protocol === 'http' ? '' : `${v.protocol} `}${v.path} ${v.client} [${bar}] ${v.percent.toFixed(1)}% ${rate}`;
    return line.length > columns - 1 ? line.slice(0, columns - 2) + '…' : line;
  });
  if (views.length > MAX_LINES) lines.push(`  … and ${views.length - MAX_LINES} more`);
  return lines;
}
