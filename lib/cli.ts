// Command-line and environment parsing: argv and env in, a Config (or a usage error) out.

import type { LogFormat } from './observe/log.js';

export interface Config {
  root: string;
  port: number;
  /** undefined: every interface, IPv6 and IPv4 on one dual-stack socket. */
  host: string | undefined;
  stallTimeoutMs: number;
  listing: boolean;
  dotfiles: boolean;
  quiet: boolean;
  logFormat: LogFormat;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  shutdownGraceMs: number;
  admin: boolean;
  adminListen: string | undefined;
  bootMenu: boolean;
  menuTimeoutMs: number;
  menuDefault: string | undefined;
  tftp: boolean;
  tftpPort: number;
  tftpMaxBlksize: number;
  tftpTimeoutMs: number;
  tftpMaxTransfers: number;
  tftpMaxPerClient: number;
  /** Answer PXE and HTTP Boot clients on UDP 67 and 4011 (never with an address). */
  proxyDhcp: boolean;
  /** Where the iPXE binaries come from instead of the system's iPXE package directories. */
  ipxeDir: string | undefined;
  /** The open-file cache (lib/http/filecache.ts): on, files kept open, bytes of small files kept. */
  fileCache: boolean;
  fileCacheFiles: number;
  fileCacheBytes: number;
}

export type Invocation =
  | { kind: 'serve'; config: Config }
  | { kind: 'print-menu'; config: Config }
  | { kind: 'help' }
  | { kind: 'version' };

/** A bad invocation: the CLI prints the message and a hint to --help, then exits 2. */
export class UsageError extends Error {}

type Kind = 'flag' | 'duration' | 'count' | 'port' | 'string' | 'format' | 'size';

interface Option {
  key: keyof Config | 'help' | 'version' | 'printMenu' | 'pxe';
  kind: Kind;
  short?: string;
  /** Boolean flags spelled --no-x set key to false. */
  negated?: boolean;
  help: string;
}

const OPTIONS: Record<string, Option> = {
  port: { key: 'port', kind: 'port', short: 'p', help: 'TCP port to listen on (default 8080; also $PORT)' },
  host: { key: 'host', kind: 'string', short: 'H', help: 'address to listen on (default: all, IPv6 and IPv4)' },
  'stall-timeout': { key: 'stallTimeoutMs', kind: 'duration', help: 'abort a transfer with no progress for this long (default 10s; 0 disables)' },
  'header-timeout': { key: 'headerTimeoutMs', kind: 'duration', help: 'time allowed to send request headers (default 10s)' },
  'keepalive-timeout': { key: 'keepAliveTimeoutMs', kind: 'duration', help: 'close idle keep-alive connections after (default 15s)' },
  'max-connections': { key: 'maxConnections', kind: 'count', help: 'connections served at once; more get 503 with Retry-After (default 4096)' },
  'max-connections-per-ip': { key: 'maxConnectionsPerIp', kind: 'count', help: 'connections per client address (default 64)' },
  'shutdown-grace': { key: 'shutdownGraceMs', kind: 'duration', help: 'on SIGTERM, let transfers finish this long (default 30s)' },
  'no-listing': { key: 'listing', kind: 'flag', negated: true, help: 'answer 404 for directories instead of listing them' },
  dotfiles: { key: 'dotfiles', kind: 'flag', help: 'serve names starting with a dot (hidden by default)' },
  quiet: { key: 'quiet', kind: 'flag', short: 'q', help: 'no access log, no live progress' },
  'log-format': { key: 'logFormat', kind: 'format', help: 'access log as text or json (default text)' },
  'no-admin': { key: 'admin', kind: 'flag', negated: true, help: 'turn off the /-/ admin endpoints' },
  'admin-listen': { key: 'adminListen', kind: 'string', help: 'serve /-/ endpoints on ADDR:PORT instead of the main port' },
  'no-boot-menu': { key: 'bootMenu', kind: 'flag', negated: true, help: 'do not generate /boot.ipxe when the directory has none' },
  'menu-timeout': { key: 'menuTimeoutMs', kind: 'duration', help: 'generated menu: time before the default entry (default 10s)' },
  'menu-default': { key: 'menuDefault', kind: 'string', help: 'generated menu: the default entry (default: the first)' },
  tftp: { key: 'tftp', kind: 'flag', help: 'also serve DIR over TFTP (read-only), for PXE firmware' },
  'tftp-port': { key: 'tftpPort', kind: 'port', help: 'UDP port for TFTP (default 69: needs root or CAP_NET_BIND_SERVICE)' },
  'tftp-max-blksize': { key: 'tftpMaxBlksize', kind: 'count', help: 'largest TFTP block size granted (default 1468: one Ethernet frame)' },
  'tftp-timeout': { key: 'tftpTimeoutMs', kind: 'duration', help: 'give up a TFTP transfer after this long without an ACK (default 30s)' },
  'tftp-max-transfers': { key: 'tftpMaxTransfers', kind: 'count', help: 'TFTP transfers at once; more wait unanswered for their resend (default 1024)' },
  'tftp-max-per-client': { key: 'tftpMaxPerClient', kind: 'count', help: 'TFTP transfers per client address (default 16)' },
  'proxy-dhcp': { key: 'proxyDhcp', kind: 'flag', help: 'answer PXE/HTTP Boot clients beside the LAN\'s DHCP server (UDP 67, 4011)' },
  pxe: { key: 'pxe', kind: 'flag', help: 'the whole PXE stack: --tftp and --proxy-dhcp' },
  'ipxe-dir': { key: 'ipxeDir', kind: 'string', help: 'take iPXE binaries from DIR instead of /usr/lib/ipxe, /usr/share/ipxe' },
  'no-file-cache': { key: 'fileCache', kind: 'flag', negated: true, help: 'open every file for every request (no open-file cache)' },
  'file-cache-files': { key: 'fileCacheFiles', kind: 'count', help: 'files kept open between requests, one descriptor each (default 1024)' },
  'file-cache-bytes': { key: 'fileCacheBytes', kind: 'size', help: 'memory for files up to 64 KiB kept whole (default 16M; 0: none)' },
  'print-menu': { key: 'printMenu', kind: 'flag', help: 'print the generated boot.ipxe for DIR and exit' },
  help: { key: 'help', kind: 'flag', short: 'h', help: 'show this help' },
  version: { key: 'version', kind: 'flag', short: 'V', help: 'show the version' },
};

export const DEFAULTS: Omit<Config, 'root'> = {
  port: 8080,
  host: undefined,
  stallTimeoutMs: 10_000,
  listing: true,
  dotfiles: false,
  quiet: false,
  logFormat: 'text',
  headerTimeoutMs: 10_000,
  keepAliveTimeoutMs: 15_000,
  maxConnections: 4096,
  maxConnectionsPerIp: 64,
  shutdownGraceMs: 30_000,
  admin: true,
  adminListen: undefined,
  bootMenu: true,
  menuTimeoutMs: 10_000,
  menuDefault: undefined,
  tftp: false,
  tftpPort: 69,
  tftpMaxBlksize: 1468,
  tftpTimeoutMs: 30_000,
  tftpMaxTransfers: 1024,
  tftpMaxPerClient: 16,
  proxyDhcp: false,
  ipxeDir: undefined,
  fileCache: true,
  fileCacheFiles: 1024,
  fileCacheBytes: 16 * 1024 * 1024,
};

/** Split "ADDR:PORT" or "[v6]:PORT" (for --admin-listen). */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--admin-listen: expected ADDR:PORT, got '${text}'`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Parse "10" (seconds), "10s", "500ms", "2m" into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid duration '${text}' (use e.g. 10, 10s, 500ms, 2m)`);
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number;
  return Math.round(Number(m[1]) * scale);
}

function parseValue(name: string, kind: Kind, text: string): string | number | boolean {
  switch (kind) {
    case 'duration':
      try {
        return parseDuration(text);
      } catch {
        throw new UsageError(`--${name}: invalid duration '${text}' (use e.g. 10, 10s, 500ms, 2m)`);
      }
    case 'port':
    case 'count': {
      const n = /^\d+$/.test(text) ? Number(text) : NaN;
      const max = kind === 'port' ? 65535 : 1_000_000;
      if (!(n >= (kind === 'port' ? 0 : 1) && n <= max)) throw new UsageError(`--${name}: invalid value '${text}'`);
      return n;
    }
    case 'size': {
      const m = /^(\d+)([KMG]?)$/i.exec(text.trim());
      if (!m) throw new UsageError(`--${name}: invalid size '${text}' (use e.g. 0, 65536, 64K, 16M, 1G)`);
      return Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] as string).toUpperCase()] as number);
    }
    case 'format':
      if (text !== 'text' && text !== 'json') throw new UsageError(`--${name}: expected text or json, got '${text}'`);
      return text;
    case 'flag': {
      const t = text.toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
      throw new UsageError(`--${name}: expected true or false, got '${text}'`);
    }
    case 'string':
      if (text === '') throw new UsageError(`--${name}: empty value`);
      return text;
  }
}

/**
 * Parse argv (without node and the script) and the environment. Every option can also be set
 * as BOOTSERVE_<NAME> (e.g. BOOTSERVE_STALL_TIMEOUT=30s, BOOTSERVE_NO_LISTING=1); flags win.
 */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = {}): Invocation {
  const values: Record<string, unknown> = {};
  const set = (name: string, opt: Option, value: string | number | boolean) => {
    values[opt.key] = opt.negated ? !value : value;
  };

  if (env.PORT !== undefined && env.PORT !== '') set('port', OPTIONS.port as Option, parseValue('port', 'port', env.PORT));
  for (const [name, opt] of Object.entries(OPTIONS)) {
    const raw = env[`BOOTSERVE_${name.toUpperCase().replace(/-/g, '_')}`];
    if (raw !== undefined && opt.key !== 'help' && opt.key !== 'version') set(name, opt, parseValue(name, opt.kind, raw));
  }

  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      const found = Object.entries(OPTIONS).find(([, o]) => o.short === arg.slice(1));
      if (!found) throw new UsageError(`unknown option '${arg}'`);
      name = found[0];
    }
    const opt = OPTIONS[name];
    if (!opt) throw new UsageError(`unknown option '${arg}'`);
    if (opt.kind === 'flag') {
      set(name, opt, inline === undefined ? true : parseValue(name, 'flag', inline));
      continue;
    }
    const text = inline ?? argv[++i];
    if (text === undefined) throw new UsageError(`--${name} needs a value`);
    set(name, opt, parseValue(name, opt.kind, text));
  }

  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (positional.length > 1) throw new UsageError(`expected one directory, got ${positional.length}: ${positional.join(' ')}`);
  const printMenu = values.printMenu === true;
  if (values.pxe === true) {
    values.tftp = true;
    values.proxyDhcp = true;
  }
  delete values.pxe;
  delete values.help;
  delete values.version;
  delete values.printMenu;
  const config: Config = { ...DEFAULTS, ...(values as Partial<Config>), root: positional[0] ?? '.' };
  if (config.adminListen !== undefined) parseHostPort(config.adminListen);
  // RFC 2348's range.
  if (config.tftpMaxBlksize < 8 || config.tftpMaxBlksize > 65464) throw new UsageError(`--tftp-max-blksize: expected 8 to 65464, got ${config.tftpMaxBlksize}`);
  if (config.tftpTimeoutMs < 1000) throw new UsageError(`--tftp-timeout: at least 1s, got ${config.tftpTimeoutMs}ms`);
  return { kind: printMenu ? 'print-menu' : 'serve', config };
}

export function usage(): string {
  const lines = ['Usage: bootserve [options] [DIR]', '', 'Serve DIR (default: the current directory) to netboot clients over HTTP (and TFTP with --tftp).', '', 'Options:'];
  for (const [name, opt] of Object.entries(OPTIONS)) {
    const flag = (opt.short ? `-${opt.short}, ` : '    ') + `--${name}` + (opt.kind === 'flag' ? '' : ' VALUE');
    lines.push(`  ${flag.padEnd(34)}${opt.help}`);
  }
  lines.push('', 'Every option can also be set as BOOTSERVE_<NAME>, e.g. BOOTSERVE_STALL_TIMEOUT=30s; flags win.');
  lines.push('Durations: 10 (seconds), 10s, 500ms, 2m. Sizes: bytes, or with K, M, G (binary).');
  return lines.join('\n');
}
