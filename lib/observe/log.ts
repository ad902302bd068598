// Access and error logging to stdout/stderr only: one line per finished response or transfer,
// whatever the protocol, so one machine's steps line up in one log.
import type { TransferOutcome } from './outcomes.js';

export type LogFormat = 'text' | 'json';

export interface HttpRecord {
  protocol: 'http';
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

export interface TftpRecord {
  protocol: 'tftp';
  time: string;
  client: string;
  /** The file name as the client sent it. */
  path: string;
  mode: string;
  /** File bytes the client acknowledged. */
  bytesSent: number;
  bytesDue: number;
  blksize: number;
  windowsize: number;
  retransmits: number;
  durationMs: number;
  /** `refused`: answered with an ERROR, nothing sent. */
  outcome: TransferOutcome | 'refused';
  /** The ERROR that ended it: ours for a refusal, the client's otherwise (edk2's ERROR 8 after
   * its size probe is on purpose). */
  error?: string;
}

export type AccessRecord = HttpRecord | TftpRecord;

/** One DHCP packet: answered (offer on 67, ack on 4011) or ignored, with the reason. */
export interface DhcpRecord {
  protocol: 'dhcp';
  time: string;
  /** The sender's address ("0.0.0.0" before the client has one). */
  client: string;
  /** The client's hardware address, or "-" when the packet could not be read. */
  mac: string;
  port: number;
  /** DISCOVER, REQUEST, INFORM, ... or "-" */
  message: string;
  /** Transaction id, hex. */
  xid: string;
  /** Option 93, or null. */
  arch: number | null;
  answer: 'offer' | 'ack' | 'ignored';
  /** Answers: the client kind and boot file; ignored: the reason and its detail. */
  kind?: string;
  bootFile?: string;
  /** Answers: which boot path the machine was sent down (iPXE, or the signed shim → GRUB chain). */
  bootPath?: 'ipxe' | 'signed';
  reason?: string;
  detail?: string;
}

/**
 * At most `perSecond` log lines a second for what anyone can trigger without a handshake (UDP
 * datagrams, forged or not); the rest are counted and summed up in one line after the second.
 */
export class LogBudget {
  private used = 0;
  private over = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly summary: (dropped: number) => void,
  ) {}

  /** Whether one more line may be written now. */
  take(): boolean {
    if (!this.timer) {
      this.timer = setTimeout(() => this.next(), 1000);
      this.timer.unref();
    }
    if (this.used < this.perSecond) {
      this.used++;
      return true;
    }
    this.over++;
    return false;
  }

  private next(): void {
    if (this.over > 0) this.summary(this.over);
    this.used = 0;
    this.over = 0;
    this.timer = undefined;
  }
}

export interface Logger {
  access(record: AccessRecord): void;
  /** Operational messages (warnings, errors) go to stderr in every format. */
  error(message: string): void;
  info(message: string): void;
}

export function formatAccess(r: AccessRecord, format: LogFormat): string {
  if (format === 'json') return JSON.stringify(r);
  const common = `${r.time} ${r.client}`;
  switch (r.protocol) {
    case 'http':
      return (
        `${common} ${r.method} ${JSON.stringify(r.path)} ${r.status} ` +
        `${r.bytesSent}/${r.bytesDue} ${r.durationMs}ms ${r.outcome} ${JSON.stringify(r.userAgent)}`
      );
    case 'tftp':
      return (
        `${common} TFTP ${JSON.stringify(r.path)} - ${r.bytesSent}/${r.bytesDue} ${r.durationMs}ms ${r.outcome}` +
        (r.outcome === 'refused' ? '' : ` blksize=${r.blksize} windowsize=${r.windowsize} mode=${r.mode} retransmits=${r.retransmits}`) +
        (r.error === undefined ? '' : ` error=${JSON.stringify(r.error)}`)
      );
  }
}

export function formatDhcp(r: DhcpRecord, format: LogFormat): string {
  if (format === 'json') return JSON.stringify(r);
  const what =
    r.answer === 'ignored'
      ? `ignored ${r.reason} ${JSON.stringify(r.detail ?? '')}`
      : `${r.answer} ${r.kind} ${JSON.stringify(r.bootFile ?? '')}${r.bootPath === 'signed' ? ' path=signed' : ''}`;
  return `${r.time} ${r.client} DHCP ${r.port} ${r.message} ${r.mac} xid=${r.xid} arch=${r.arch ?? '-'} ${what}`;
}

/** A logger that also writes DHCP records (a separate interface: HTTP code never needs it). */
export interface DhcpLogger {
  dhcp(record: DhcpRecord): void;
}

export function createLogger(
  format: LogFormat,
  quiet: boolean,
  out: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  err: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Logger & DhcpLogger {
  const stamp = (level: string, message: string) =>
    format === 'json' ? JSON.stringify({ time: new Date().toISOString(), level, message }) : `bootserve: ${message}`;
  return {
    access: (record) => {
      if (!quiet) out(formatAccess(record, format));
    },
    dhcp: (record) => {
      if (!quiet) out(formatDhcp(record, format));
    },
    error: (message) => err(stamp('error', message)),
    info: (message) => {
      if (!quiet) out(stamp('info', message));
    },
  };
}
