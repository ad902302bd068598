// What a second SIGINT/SIGTERM cut: the operator asked to stop now, so the transfers still
// running end without their access-log lines; say which they were, bounded.

export interface RunningTransfer {
  protocol: string;
  client: string;
  path: string;
  bytesSent: number;
  bytesDue: number;
}

const SHOWN = 20;

export function cutTransfersLines(signal: string, running: Iterable<RunningTransfer>): string[] {
  const all = [...running];
  if (all.length === 0) return [`${signal} again: exiting now (no transfer was running)`];
  const lines = [`${signal} again: exiting now, cutting ${all.length} transfer${all.length === 1 ? '' : 's'}`];
  for (const t of all.slice(0, SHOWN)) {
    lines.push(`cut: ${t.client} ${t.protocol} ${t.path} at ${t.bytesSent} of ${t.bytesDue} bytes`);
  }
  if (all.length > SHOWN) lines.push(`cut: and ${all.length - SHOWN} more`);
  return lines;
}
