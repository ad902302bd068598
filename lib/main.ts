// The bootserve command: parse, check the directory, listen, print where, stop on signals.
import { readFileSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { parseArgs, usage, UsageError, type Config } from './cli.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
import { createBootServer } from './server.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Exit with a one-line message: 2 for a bad invocation, 1 for a bad environment. */
function fail(message: string, code: 1 | 2): never {
  process.stderr.write(`bootserve: ${message}${code === 2 ? " (see 'bootserve --help')" : ''}\n`);
  process.exit(code);
}

async function realDirectory(dir: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch {
    return fail(`directory not found: ${dir}`, 1);
  }
  if (!(await stat(real)).isDirectory()) fail(`not a directory: ${dir}`, 1);
  return real;
}

/** Listen on config.host, or on every interface: dual-stack "::", else IPv4 only. */
function listen(server: import('node:http').Server, config: Config): Promise<AddressInfo> {
  const attempt = (host: string) =>
    new Promise<AddressInfo>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: config.port, host, ipv6Only: false }, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  if (config.host !== undefined) return attempt(config.host);
  return attempt('::').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL') return attempt('0.0.0.0');
    throw err;
  });
}

/** One URL per address a client could use: non-internal ones, or loopback if there are none. */
export function urlsFor(address: AddressInfo, host: string | undefined): string[] {
  const fmt = (a: string) => (a.includes(':') ? `[${a}]` : a);
  const wildcard = host === undefined || host === '::' || host === '0.0.0.0';
  if (!wildcard) return [`http://${fmt(address.address)}:${address.port}/`];
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const v4only = address.family === 'IPv4';
  const usable = all.filter((i) => (!v4only || i.family === 'IPv4') && !i.address.startsWith('fe80'));
  const external = usable.filter((i) => !i.internal);
  return (external.length ? external : usable).map((i) => `http://${fmt(i.address)}:${address.port}/`);
}

async function main(): Promise<void> {
  let invocation;
  try {
    invocation = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) fail(err.message, 2);
    throw err;
  }
  if (invocation.kind === 'help') return void process.stdout.write(usage() + '\n');
  if (invocation.kind === 'version') return void process.stdout.write(VERSION + '\n');
  const config = invocation.config;
  const root = await realDirectory(config.root);
  const { generateBootMenu } = await import('./bootmenu.js');
  const bootMenu = () => generateBootMenu(root, { timeoutMs: config.menuTimeoutMs, defaultEntry: config.menuDefault, dotfiles: config.dotfiles, warn: (m) => logger.error(m) });
  const logger = createLogger(config.logFormat, config.quiet);
  if (invocation.kind === 'print-menu') return void process.stdout.write(await bootMenu());

  const metrics = new Metrics();
  let shuttingDown = false;
  const server = createBootServer({ config, root, logger, metrics, bootMenu: config.bootMenu ? bootMenu : undefined, shuttingDown: () => shuttingDown });

  let address: AddressInfo;
  try {
    address = await listen(server.http, config);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const where = `${config.host ?? '*'}:${config.port}`;
    if (e.code === 'EADDRINUSE') fail(`port ${config.port} is already in use (${where})`, 1);
    if (e.code === 'EACCES') fail(`permission denied to listen on ${where}`, 1);
    fail(`cannot listen on ${where}: ${e.message}`, 1);
  }

  const urls = urlsFor(address, config.host);
  const banner = [`serving ${root}`, ...urls.map((u) => `listening on ${u}`), `iPXE: chain ${urls[0]}boot.ipxe`];
  for (const line of banner) logger.info(line);
  if (config.stallTimeoutMs === 0) logger.error('warning: --stall-timeout 0 disables the stall guard: a client that stops reading holds its connection forever');

  const stop = (signal: string) => {
    if (shuttingDown) {
      logger.error(`${signal} again: exiting now`);
      process.exit(1);
    }
    shuttingDown = true;
    logger.info(`${signal}: finishing transfers (up to ${config.shutdownGraceMs / 1000}s), then exiting`);
    void server.shutdown(config.shutdownGraceMs).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err), 1));
