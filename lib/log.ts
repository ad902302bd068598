// Access and error logging to stdout/stderr only: one line per finished response.
import type { LogFormat } from './cli.js';
import type { TransferOutcome } from './metrics.js';

export interface AccessRecord {
  time: string;
  client: string;
  method: string;
  path: string;
  status: number;
  bytesSent: number;
  bytesDue: number;
  durationMs: number;
  outcome: TransferOutcome;
  userAgent: string;
}

export interface Logger {
  access(record: AccessRecord): void;
  /** Operational messages (warnings, errors) go to stderr in every format. */
  error(message: string): void;
  info(message: string): void;
}

export function formatAccess(r: AccessRecord, format: LogFormat): string {
  if (format === 'json') return JSON.stringify(r);
  return `${r.time} ${r.client} ${r.method} ${JSON.stringify(r.path)} ${r.status} ${r.bytesSent}/${r.bytesDue} ${r.durationMs}ms ${r.outcome} ${JSON.stringify(r.userAgent)}`;
}

export function createLogger(
  format: LogFormat,
  quiet: boolean,
  out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  err: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Logger {
  const stamp = (level: string, message: string) =>
    format === 'json' ? JSON.stringify({ time: new Date().toISOString(), level, message }) : `bootserve: ${message}`;
  return {
    access: (record) => {
      if (!quiet) out(formatAccess(record, format));
    },
    error: (message) => err(stamp('error', message)),
    info: (message) => {
      if (!quiet) out(stamp('info', message));
    },
  };
}
