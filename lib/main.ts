// The bootserve command: parse, check the directory, listen, print where, stop on signals.
import { readFileSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { AddressInfo } from 'node:net';
import { adminReply, type AdminState } from './http/admin.js';
import { parseArgs, parseHostPort, proxyFlag, unknownVariables, usage, UsageError, type Config } from './cli.js';
import { fileCacheFor } from './http/filecache.js';
import { sendReply, type Context } from './http/handler.js';
import { createLiveView } from './live.js';
import { createLogger } from './log.js';
import { Machines } from './machines.js';
import { Metrics } from './metrics.js';
import { createBootServer } from './http/server.js';
import { advertisedAddress, bindErrorMessage, PRIVILEGED_PORT_ADVICE } from './dhcp/address.js';
import { DhcpBindError, startDhcpServer, type DhcpServer } from './dhcp/server.js';
import { dhcpMetricsLines, DhcpStats } from './dhcp/stats.js';
import { checkIpxeDir, findIpxeBinaries, noBootProgram, servedFromOutside, type IpxeCatalog } from './netboot/ipxe.js';
import { cutTransfersLines } from './interrupted.js';
import { watchParent } from './parentwatch.js';
import { dropPrivileges, droppedNote, lookupAccount, planPrivileges, unreadableBy } from './privileges.js';
import { startTftpServer, type TftpServer } from './tftp/server.js';
import { TftpStats } from './tftp/stats.js';

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

/**
 * The descriptor systemd passed us (socket activation: LISTEN_PID is us, LISTEN_FDS ≥ 1), or
 * undefined. The variables are removed so that nothing we start inherits them.
 */
function activationFd(warn: (message: string) => void): number | undefined {
  const { LISTEN_PID, LISTEN_FDS } = process.env;
  delete process.env.LISTEN_PID;
  delete process.env.LISTEN_FDS;
  delete process.env.LISTEN_FDNAMES;
  if (LISTEN_PID !== String(process.pid) || !(Number(LISTEN_FDS) >= 1)) return undefined;
  warn(`socket activation: serving on the socket systemd passed (fd 3); --port and --host are not used${Number(LISTEN_FDS) > 1 ? `; ${Number(LISTEN_FDS) - 1} more socket(s) ignored` : ''}`);
  return 3;
}

/** Listen on an inherited descriptor, on `host`, or on every interface (dual-stack "::", else IPv4). */
function listen(server: Server, port: number, host: string | undefined, fd?: number): Promise<AddressInfo> {
  const attempt = (options: { fd: number } | { port: number; host: string; ipv6Only: boolean }) =>
    new Promise<AddressInfo>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  if (fd !== undefined) return attempt({ fd });
  if (host !== undefined) return attempt({ port, host, ipv6Only: false });
  return attempt({ port, host: '::', ipv6Only: false }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL') return attempt({ port, host: '0.0.0.0', ipv6Only: false });
    throw err;
  });
}

function listenOrExit(config: Config, server: Server, port: number, host: string | undefined, fd?: number): Promise<AddressInfo> {
  return listen(server, port, host, fd).catch((e: NodeJS.ErrnoException) => {
    const where = `${host ?? '*'}:${port}`;
    const flag = port === config.port ? '--port' : '--admin-listen';
    if (e.code === 'EADDRINUSE') fail(`TCP port ${port} is already in use (${where}): another server has it; choose another with ${flag}`, 1);
    if (e.code === 'EACCES') fail(`permission denied for TCP port ${port} (${where}): ${PRIVILEGED_PORT_ADVICE}; or a port above 1023 with ${flag}`, 1);
    if (e.code === 'EADDRNOTAVAIL') fail(`${flag === '--port' ? '--host' : '--admin-listen'} ${host}: not an address of this host`, 1);
    return fail(`cannot listen on ${where}: ${e.message}`, 1);
  });
}

/** One URL per address a client could use: non-internal ones, or loopback if there are none. */
export function urlsFor(address: AddressInfo): string[] {
  const fmt = (a: string) => (a.includes(':') ? `[${a}]` : a);
  if (address.address !== '::' && address.address !== '0.0.0.0') return [`http://${fmt(address.address)}:${address.port}/`];
  let all: NetworkInterfaceInfo[];
  try {
    all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  } catch {
    // No netlink (e.g. a systemd unit with RestrictAddressFamilies): name no address.
    return [`http://<this-host>:${address.port}/`];
  }
  const usable = all.filter((i) => (address.family === 'IPv6' || i.family === 'IPv4') && !i.address.startsWith('fe80'));
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
  const config: Config = invocation.config;
  const root = await realDirectory(config.root);
  // Who to run as once the ports are bound: decided before binding, so a refusal leaves nothing behind.
  const privileges = process.getuid ? planPrivileges(config.user, process.getuid(), lookupAccount) : ({ kind: 'keep', note: undefined } as const);
  if (privileges.kind === 'refused') fail(privileges.message, 1);
  const ipxeDirProblem = checkIpxeDir(config.ipxeDir);
  if (ipxeDirProblem) fail(ipxeDirProblem, 1);
  const live = createLiveView(process.stdout, !config.quiet && config.logFormat === 'text');
  // Every record any service logs also feeds the operator's list of machines (/-/machines).
  const machines = new Machines();
  const log = createLogger(config.logFormat, config.quiet, live.print);
  const logger: typeof log = {
    ...log,
    access: (record) => (machines.observe(record), log.access(record)),
    dhcp: (record) => (machines.observe(record), log.dhcp(record)),
  };
  // Loaded on the first /boot.ipxe: most starts never need it.
  const bootMenu = async () =>
    (await import('./netboot/bootmenu.js')).generateBootMenu(root, {
      timeoutMs: config.menuTimeoutMs,
      defaultEntry: config.menuDefault,
      dotfiles: config.dotfiles,
      warn: (m) => logger.error(m), // the menu's messages start with "boot menu:"
    });
  if (invocation.kind === 'print-menu') return void process.stdout.write(await bootMenu());

  const metrics = new Metrics();
  // DHCP answers and ignored packets, for /-/metrics.
  const dhcpStats = new DhcpStats();
  // proxyDHCP: decide the address before binding anything, so a refusal leaves nothing behind.
  const advertised = config.proxyDhcp ? advertisedAddress(config.host, networkInterfaces(), proxyFlag(config)) : undefined;
  if (advertised?.kind === 'refused') fail(advertised.message, 1);
  // iPXE binaries (served dir's ipxe/, else --ipxe-dir or the system's package) for TFTP and HTTP.
  const ipxe: IpxeCatalog | undefined = config.proxyDhcp || config.tftp ? findIpxeBinaries({ root, ipxeDir: config.ipxeDir }) : undefined;
  const noProgram = config.proxyDhcp && ipxe ? noBootProgram(ipxe, root, proxyFlag(config)) : undefined;
  if (noProgram) fail(noProgram, 1);
  for (const warning of unknownVariables(process.env)) logger.error(warning);
  let shuttingDown = false;
  const tftpStats = new TftpStats();
  const admin: AdminState = { version: VERSION, config, metrics, machines, ready: () => !shuttingDown, moreMetrics: () => [
      ...(config.tftp ? tftpStats.metricsLines(metrics) : []),
      ...(config.proxyDhcp ? dhcpMetricsLines(dhcpStats) : []),
    ],
  };
  const ctx: Context = {
    config,
    root,
    logger,
    metrics,
    bootMenu: config.bootMenu ? bootMenu : undefined,
    admin: config.admin && config.adminListen === undefined ? (req) => adminReply(req, admin) : undefined,
    shuttingDown: () => shuttingDown,
    ipxeFile: ipxe?.ipxeFile,
    // Connections and transfers (HTTP and TFTP) need descriptors before the cache does.
    files: fileCacheFor(config, () => metrics.connections + metrics.active.size),
  };
  const server = createBootServer(ctx);
  // Out of descriptors at accept(): the cache gives its own back first.
  server.http.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') void ctx.files?.shed();
  });
  if (config.stallTimeoutMs === 0) logger.error('warning: --stall-timeout 0 disables the stall guard: a client that stops reading holds its connection forever');
  // Allowed (a TFTP server of one's own on this host), but usually a mistake: say so.
  if (config.proxyDhcp && !config.tftp) logger.error('warning: --proxy-dhcp without --tftp: BIOS and UEFI PXE firmware is sent to this host for its boot program over TFTP; use --pxe unless another TFTP server runs here');
  const address = await listenOrExit(config, server.http, config.port, config.host, activationFd((m) => logger.info(m)));

  let adminServer: Server | undefined;
  if (config.admin && config.adminListen !== undefined) {
    const { host, port } = parseHostPort(config.adminListen);
    adminServer = createServer((req, res) => void sendReply(req, res, { ...adminReply(req, admin), internal: true }, ctx).catch(() => res.destroy()));
    const at = await listenOrExit(config, adminServer, port, host);
    logger.info(`admin on http://${at.address.includes(':') ? `[${at.address}]` : at.address}:${at.port}/-/`);
  }

  let tftp: TftpServer | undefined;
  if (config.tftp) {
    tftp = await startTftpServer({
      config,
      root,
      logger,
      metrics,
      stats: tftpStats,
      fallback: (segments) => ipxe?.ipxeFile(segments.join('/')),
      shed: () => void ctx.files?.shed(),
    }).catch((e: Error) => fail(e.message, 1));
  }

  let dhcp: DhcpServer | undefined;
  if (advertised?.kind === 'address' && ipxe) {
    try {
      dhcp = await startDhcpServer({
        policy: { serverAddress: advertised.address, httpPort: address.port, binaryFor: ipxe.binaryFor },
        stats: dhcpStats,
        log: (record) => logger.dhcp(record),
        error: (message) => logger.error(message),
      });
    } catch (err) {
      if (err instanceof DhcpBindError) fail(bindErrorMessage(err), 1);
      throw err;
    }
    logger.info(`proxyDHCP: answering PXE and HTTP Boot clients on UDP 67 and ${advertised.address}:4011, advertising ${advertised.address}`);
  }
  // Every port is bound: become the unprivileged user for good, then check what it can read.
  if (privileges.kind === 'drop') {
    await import('./netboot/bootmenu.js'); // loaded while the code's folder is surely readable
    try {
      dropPrivileges(privileges.account, process as Parameters<typeof dropPrivileges>[1]);
    } catch (err) {
      fail(`--user ${privileges.account.name}: ${(err as Error).message}`, 1);
    }
    const unreadable = unreadableBy(privileges.account.name, root, ipxe ? servedFromOutside(ipxe) : []);
    if (unreadable) fail(unreadable, 1);
    logger.info(droppedNote(privileges));
  } else if (privileges.note) logger.info(privileges.note);
  for (const line of ipxe?.banner() ?? []) logger.info(line);

  const urls = urlsFor(address);
  logger.info(`serving ${root}`);
  for (const url of urls) logger.info(`listening on ${url}`);
  if (tftp) {
    const at = tftp.addresses.map((a) => (a.address.includes(':') ? `[${a.address}]` : a.address)).join(', ');
    logger.info(`TFTP on UDP port ${tftp.addresses[0]?.port ?? config.tftpPort} (${at})`);
  }
  logger.info(`iPXE: chain ${urls[0]}boot.ipxe`);
  live.start(metrics);

  const stop = (signal: string) => {
    if (shuttingDown) {
      for (const line of cutTransfersLines(signal, metrics.active.values())) logger.error(line);
      process.stdout.write('', () => process.exit(1));
      setTimeout(() => process.exit(1), 500).unref();
      return;
    }
    shuttingDown = true;
    logger.info(`${signal}: finishing transfers (up to ${config.shutdownGraceMs / 1000}s), then exiting`);
    live.stop();
    void dhcp?.close();
    // Both resolve once every transfer is logged; the empty write calls back once the log
    // lines before it are flushed (stdout is asynchronous on some pipes and terminals), and
    // the timer exits anyway should stdout never drain.
    const exit = () => process.exit(0);
    void Promise.all([server.shutdown(config.shutdownGraceMs), tftp?.shutdown(config.shutdownGraceMs)]).then(() => {
      process.stdout.write('', exit);
      setTimeout(exit, 1000);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  // `npx` and `npm exec` do not pass SIGTERM on (npm/cli#5776): stop when the parent goes away.
  watchParent({ env: process.env, ppid: () => process.ppid, onGone: (pid) => stop(`parent process (pid ${pid}) went away`) });
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err), 1));
