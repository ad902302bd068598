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
  /** --pxe was given (messages name the flag the operator typed). */
  pxe: boolean;
  /** --user: who to run as after binding (started as root; undefined: nobody). */
  user: string | undefined;
  /** Where the iPXE binaries come from instead of the system's iPXE package directories. */
  ipxeDir: string | undefined;
  /** The open-file cache (lib/http/filecache.ts): on, files kept open, bytes of small files kept. */
  fileCache: boolean;
  fileCacheFiles: number;
  fileCacheBytes: number;
  /** Give the signed shim → GRUB chain to every UEFI client whose architecture has one. */
  secureBoot: boolean;
  /** A tree laid out like / where the chain is looked up before the system's own paths. */
  secureBootDir: string | undefined;
  /** Only these machines get the signed chain: MACs, comma-separated (implies the signed path). */
  secureBootFor: string | undefined;
}

export type Invocation =
  | { kind: 'serve'; config: Config }
  | { kind: 'print-menu'; config: Config }
  | { kind: 'help' }
  | { kind: 'version' };

/** A bad invocation: the CLI prints the message and a hint to --help, then exits 2. */
export class UsageError extends Error {}

type Kind = 'flag' | 'duration' | 'count' | 'port' | 'string' | 'format' | 'size';

/** The help's sections, in order. */
type Group = 'serve' | 'pxe' | 'limits' | 'log' | 'other';

const GROUP_TITLE: Record<Group, string> = {
  serve: 'Serving',
  pxe: 'PXE: TFTP and proxyDHCP',
  limits: 'Limits and timeouts',
  log: 'Logs and the operator pages',
  other: 'Other',
};

export interface Option {
  key: keyof Config | 'help' | 'version' | 'printMenu' | 'pxe';
  kind: Kind;
  group: Group;
  /** What the value is, as the help shows it (SECONDS, ADDR, N, ...); flags have none. */
  value?: string;
  short?: string;
  /** Boolean flags spelled --no-x set key to false. */
  negated?: boolean;
  help: string;
}

export const OPTIONS: Record<string, Option> = {
  port: { key: 'port', kind: 'port', group: 'serve', value: 'PORT', short: 'p', help: 'TCP port for HTTP (default 8080; also $PORT)' },
  host: {
    key: 'host',
    kind: 'string',
    group: 'serve',
    value: 'ADDR',
    short: 'H',
    help: 'address to listen on; with --pxe, the one to advertise',
  },
  user: {
    key: 'user',
    kind: 'string',
    group: 'serve',
    value: 'NAME',
    help: 'run as NAME once the ports are bound (as root: default nobody)',
  },
  'no-listing': { key: 'listing', kind: 'flag', group: 'serve', negated: true, help: 'answer 404 for directories instead of listing them' },
  dotfiles: { key: 'dotfiles', kind: 'flag', group: 'serve', help: 'serve names starting with a dot (hidden by default)' },
  'no-boot-menu': { key: 'bootMenu', kind: 'flag', group: 'serve', negated: true, help: 'do not generate /boot.ipxe when DIR has none' },
  'menu-timeout': {
    key: 'menuTimeoutMs',
    kind: 'duration',
    group: 'serve',
    value: 'SECONDS',
    help: 'generated menu: time before the default entry (default 10s)',
  },
  'menu-default': {
    key: 'menuDefault',
    kind: 'string',
    group: 'serve',
    value: 'ENTRY',
    help: 'generated menu: the default entry (default: the first)',
  },
  'print-menu': { key: 'printMenu', kind: 'flag', group: 'serve', help: 'print the generated boot.ipxe for DIR and exit' },
  pxe: { key: 'pxe', kind: 'flag', group: 'pxe', help: 'the whole PXE stack: --tftp and --proxy-dhcp' },
  tftp: { key: 'tftp', kind: 'flag', group: 'pxe', help: 'also serve DIR over TFTP (read-only), for PXE firmware' },
  'tftp-port': { key: 'tftpPort', kind: 'port', group: 'pxe', value: 'PORT', help: 'UDP port for TFTP (default 69, which firmware uses)' },
  'tftp-max-blksize': {
    key: 'tftpMaxBlksize',
    kind: 'count',
    group: 'pxe',
    value: 'N',
    help: 'largest TFTP block size granted (default 1468)',
  },
  'tftp-timeout': {
    key: 'tftpTimeoutMs',
    kind: 'duration',
    group: 'pxe',
    value: 'SECONDS',
    help: 'give up a TFTP transfer without an ACK this long (default 30s)',
  },
  'tftp-max-transfers': {
    key: 'tftpMaxTransfers',
    kind: 'count',
    group: 'pxe',
    value: 'N',
    help: 'TFTP transfers at once; more wait for their resend (default 1024)',
  },
  'tftp-max-per-client': {
    key: 'tftpMaxPerClient',
    kind: 'count',
    group: 'pxe',
    value: 'N',
    help: 'TFTP transfers per client address (default 16)',
  },
  'proxy-dhcp': { key: 'proxyDhcp', kind: 'flag', group: 'pxe', help: "answer PXE and HTTP Boot beside the LAN's DHCP (UDP 67, 4011)" },
  'ipxe-dir': {
    key: 'ipxeDir',
    kind: 'string',
    group: 'pxe',
    value: 'DIR',
    help: 'iPXE binaries from DIR, not /usr/lib/ipxe, /usr/share/ipxe',
  },
  'stall-timeout': {
    key: 'stallTimeoutMs',
    kind: 'duration',
    group: 'limits',
    value: 'SECONDS',
    help: 'abort a transfer without progress this long (default 10s; 0: off)',
  },
  'header-timeout': {
    key: 'headerTimeoutMs',
    kind: 'duration',
    group: 'limits',
    value: 'SECONDS',
    help: 'time allowed to send request headers (default 10s)',
  },
  'keepalive-timeout': {
    key: 'keepAliveTimeoutMs',
    kind: 'duration',
    group: 'limits',
    value: 'SECONDS',
    help: 'close idle keep-alive connections after (default 15s)',
  },
  'max-connections': {
    key: 'maxConnections',
    kind: 'count',
    group: 'limits',
    value: 'N',
    help: 'HTTP connections at once; more get 503 (default 2048)',
  },
  'max-connections-per-ip': {
    key: 'maxConnectionsPerIp',
    kind: 'count',
    group: 'limits',
    value: 'N',
    help: 'HTTP connections per client address (default 64)',
  },
  'shutdown-grace': {
    key: 'shutdownGraceMs',
    kind: 'duration',
    group: 'limits',
    value: 'SECONDS',
    help: 'on SIGTERM, let transfers finish this long (default 30s)',
  },
  'no-file-cache': {
    key: 'fileCache',
    kind: 'flag',
    group: 'limits',
    negated: true,
    help: 'no open-file cache: open every file for every request',
  },
  'file-cache-files': {
    key: 'fileCacheFiles',
    kind: 'count',
    group: 'limits',
    value: 'N',
    help: 'files kept open between requests (default 1024)',
  },
  'file-cache-bytes': {
    key: 'fileCacheBytes',
    kind: 'size',
    group: 'limits',
    value: 'SIZE',
    help: 'memory for small files kept whole (default 16M; 0: none)',
  },
  quiet: { key: 'quiet', kind: 'flag', group: 'log', short: 'q', help: 'errors and warnings only: no banner, no access or DHCP log' },
  'log-format': { key: 'logFormat', kind: 'format', group: 'log', value: 'FORMAT', help: 'logs as text or json (default text)' },
  'no-admin': { key: 'admin', kind: 'flag', group: 'log', negated: true, help: 'turn off the /-/ operator pages and endpoints' },
  'admin-listen': {
    key: 'adminListen',
    kind: 'string',
    group: 'log',
    value: 'ADDR:PORT',
    help: 'serve /-/ on ADDR:PORT instead of the HTTP port',
  },
  help: { key: 'help', kind: 'flag', group: 'other', short: 'h', help: 'show this help' },
  version: { key: 'version', kind: 'flag', group: 'other', short: 'V', help: 'show the version' },
  'secure-boot': { key: 'secureBoot', kind: 'flag', group: 'pxe', help: 'UEFI x64/ARM64 get the signed shim → GRUB chain, not iPXE' },
  'secure-boot-dir': {
    key: 'secureBootDir',
    kind: 'string',
    group: 'pxe',
    value: 'DIR',
    help: 'shim and GRUB from DIR first (laid out like /, as by dpkg -x)',
  },
  'secure-boot-for': {
    key: 'secureBootFor',
    kind: 'string',
    group: 'pxe',
    value: 'ADDR',
    help: 'the signed chain only for these MACs (comma-separated)',
  },
};

/** The environment variable for option `name`: BOOTSERVE_STALL_TIMEOUT for stall-timeout. */
export const envName = (name: string) => `BOOTSERVE_${name.toUpperCase().replace(/-/g, '_')}`;

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
  maxConnections: 2048,
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
  pxe: false,
  user: undefined,
  ipxeDir: undefined,
  fileCache: true,
  fileCacheFiles: 1024,
  fileCacheBytes: 16 * 1024 * 1024,
  secureBoot: false,
  secureBootDir: undefined,
  secureBootFor: undefined,
};

/** Split "ADDR:PORT" or "[v6]:PORT" (for --admin-listen). */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--admin-listen: expected ADDR:PORT (e.g. 127.0.0.1:9180), got '${text}'`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Parse "10" (seconds), "10s", "500ms", "2m" into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid duration '${text}' (use e.g. 10, 10s, 500ms, 2m)`);
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] as number;
  return Math.round(Number(m[1]) * scale);
}

/** `where` names the source in messages: `--stall-timeout` or `BOOTSERVE_STALL_TIMEOUT`. */
function parseValue(where: string, kind: Kind, text: string): string | number | boolean {
  switch (kind) {
    case 'duration':
      try {
        return parseDuration(text);
      } catch {
        throw new UsageError(`${where}: invalid duration '${text}' (use e.g. 10, 10s, 500ms, 2m)`);
      }
    case 'port':
    case 'count': {
      const n = /^\d+$/.test(text) ? Number(text) : NaN;
      const max = kind === 'port' ? 65535 : 1_000_000;
      const min = kind === 'port' ? 0 : 1;
      if (!(n >= min && n <= max))
        throw new UsageError(`${where}: expected ${kind === 'port' ? 'a port, ' : 'a whole number, '}${min} to ${max}, got '${text}'`);
      return n;
    }
    case 'size': {
      const m = /^(\d+)([KMG]?)$/i.exec(text.trim());
      if (!m) throw new UsageError(`${where}: invalid size '${text}' (use e.g. 0, 65536, 64K, 16M, 1G)`);
      return Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m[2] as string).toUpperCase()] as number);
    }
    case 'format':
      if (text !== 'text' && text !== 'json') throw new UsageError(`${where}: expected text or json, got '${text}'`);
      return text;
    case 'flag': {
      const t = text.toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
      throw new UsageError(`${where}: expected true or false, got '${text}'`);
    }
    case 'string':
      if (text === '') throw new UsageError(`${where}: empty value`);
      return text;
  }
}

/** Variables of the test suite (BOOTSERVE_E2E, BOOTSERVE_E2E_ASSETS, ...), not options. */
const TEST_VARIABLES = /^BOOTSERVE_E2E(_|$)/;

/**
 * One warning per BOOTSERVE_* variable that is no option (a typo would otherwise be ignored
 * silently), with the nearest option's variable when one is close.
 */
export function unknownVariables(env: NodeJS.ProcessEnv): string[] {
  const known = new Set(Object.keys(OPTIONS).filter((n) => n !== 'help' && n !== 'version').map(envName));
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('BOOTSERVE_') || known.has(name) || TEST_VARIABLES.test(name)) continue;
    const near = [...known].map((k) => ({ k, d: distance(k, name) })).sort((a, b) => a.d - b.d)[0];
    const hint = near && near.d <= 3 ? `; did you mean ${near.k}?` : '';
    warnings.push(`warning: ${name} is not a bootserve option and is ignored${hint} (options: bootserve --help)`);
  }
  return warnings;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] as number) + 1, (next[j - 1] as number) + 1, (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] as number;
}

/**
 * Parse argv (without node and the script) and the environment. Every option can also be set
 * as BOOTSERVE_<NAME> (e.g. BOOTSERVE_STALL_TIMEOUT=30s, BOOTSERVE_NO_LISTING=1); flags win.
 */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = {}): Invocation {
  const values: Record<string, unknown> = {};
  const set = (opt: Option, value: string | number | boolean) => {
    values[opt.key] = opt.negated ? !value : value;
  };

  if (env.PORT !== undefined && env.PORT !== '')
    set(OPTIONS.port as Option, parseValue('PORT (the environment, for --port)', 'port', env.PORT));
  for (const [name, opt] of Object.entries(OPTIONS)) {
    const raw = env[envName(name)];
    if (raw !== undefined && opt.key !== 'help' && opt.key !== 'version')
      set(opt, parseValue(`${envName(name)} (--${name})`, opt.kind, raw));
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
      set(opt, inline === undefined ? true : parseValue(`--${name}`, 'flag', inline));
      continue;
    }
    const text = inline ?? argv[++i];
    if (text === undefined) throw new UsageError(`--${name} needs a value (${opt.value ?? 'VALUE'})`);
    set(opt, parseValue(`--${name}`, opt.kind, text));
  }

  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (positional.length > 1) throw new UsageError(`expected one directory, got ${positional.length}: ${positional.join(' ')}`);
  const printMenu = values.printMenu === true;
  if (values.pxe === true) {
    values.tftp = true;
    values.proxyDhcp = true;
  }
  delete values.help;
  delete values.version;
  delete values.printMenu;
  const config: Config = { ...DEFAULTS, ...(values as Partial<Config>), root: positional[0] ?? '.' };
  if (config.adminListen !== undefined) parseHostPort(config.adminListen);
  // RFC 2348's range.
  if (config.tftpMaxBlksize < 8 || config.tftpMaxBlksize > 65464)
    throw new UsageError(`--tftp-max-blksize: expected 8 to 65464, got ${config.tftpMaxBlksize}`);
  if (config.secureBootFor !== undefined) secureBootMacs(config.secureBootFor);
  if (config.tftpTimeoutMs < 1000) throw new UsageError(`--tftp-timeout: at least 1s, got ${config.tftpTimeoutMs}ms`);
  return { kind: printMenu ? 'print-menu' : 'serve', config };
}

/** The flag the operator typed for proxyDHCP, for messages: --pxe or --proxy-dhcp. */
export const proxyFlag = (config: Pick<Config, 'pxe'>) => (config.pxe ? '--pxe' : '--proxy-dhcp');

/** `-p, --port PORT`: an option as the help and the README show it. */
export function optionSyntax(name: string, opt: Option): string {
  return (opt.short ? `-${opt.short}, ` : '') + `--${name}` + (opt.value ? ` ${opt.value}` : '');
}

/** --secure-boot-for's MACs, normalized to lower case with colons ("52-54-00-AB-CD-EF" → "52:54:00:ab:cd:ef"). */
export function secureBootMacs(text: string): Set<string> {
  const macs = new Set<string>();
  for (const item of text.split(',')) {
    const hex = item.trim().toLowerCase().replace(/[:-]/g, '');
    if (!/^[0-9a-f]{12}$/.test(hex))
      throw new UsageError(`--secure-boot-for: '${item.trim()}' is not a MAC address (e.g. 52:54:00:12:34:56)`);
    macs.add((hex.match(/../g) as string[]).join(':'));
  }
  return macs;
}

export function usage(): string {
  const lines = [
    'Usage: bootserve [options] [DIR]',
    '',
    'Serve DIR (default: the current directory) to machines that boot from the network: HTTP,',
    'a generated iPXE menu, and with --pxe TFTP and proxyDHCP for stock BIOS and UEFI firmware.',
  ];
  const rows = Object.entries(OPTIONS).map(([name, opt]) => ({ opt, flag: (opt.short ? '' : '    ') + optionSyntax(name, opt) }));
  const width = Math.max(...rows.map((r) => r.flag.length)) + 2;
  for (const group of Object.keys(GROUP_TITLE) as Group[]) {
    lines.push('', `${GROUP_TITLE[group]}:`);
    for (const { opt, flag } of rows.filter((r) => r.opt.group === group)) lines.push(`  ${flag.padEnd(width)}${opt.help}`);
  }
  lines.push(
    '',
    'Every option can also be set as BOOTSERVE_<NAME>, e.g. BOOTSERVE_STALL_TIMEOUT=30s; flags win.',
    'SECONDS: 10 (seconds), 10s, 500ms, 2m. SIZE: bytes, or with K, M, G (binary). N: a whole number.',
    'Exit status: 0 stopped by a signal, 1 cannot serve as configured (the message names the fix),',
    '2 bad command line.',
  );
  return lines.join('\n');
}

/** The README's option table, made from OPTIONS (test/e2e/readme.test.ts keeps the two equal). */
export function optionsMarkdown(): string {
  const rows = ['| Option | Environment | Meaning |', '| --- | --- | --- |'];
  for (const group of Object.keys(GROUP_TITLE) as Group[]) {
    rows.push(`| **${GROUP_TITLE[group]}** | | |`);
    for (const [name, opt] of Object.entries(OPTIONS).filter(([, o]) => o.group === group)) {
      const variable = group === 'other' ? '' : `\`${envName(name)}\``;
      rows.push(`| \`${optionSyntax(name, opt)}\` | ${variable} | ${opt.help.replaceAll('|', '\\|')} |`);
    }
  }
  return rows.join('\n');
}
