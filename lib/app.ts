// The builder: a parsed configuration in, the running services out, in an explicit order. main.ts
// (the process) and the tests build bootserve through here, so every test runs the production
// setup. Adding a service: a folder with a create function meeting service.ts, one entry below.
import { createLocalAdmin, needsLocalAdmin } from './admin/local.js';
import { adminReply, type AdminState } from './admin/pages.js';
import { parseHostPort, proxyFlag, type Config } from './cli.js';
import { advertisedAddress } from './dhcp/address.js';
import { createDhcpService, type DhcpService } from './dhcp/server.js';
import { createThreadedDhcpService } from './dhcp/thread.js';
import { fileCacheFor, type FileCache } from './http/filecache.js';
import { createHttpService, type HttpOptions, type HttpService } from './http/server.js';
import { listInterfaces, urlsFor } from './net/addresses.js';
import { bootFilesFor, type BootCatalog } from './netboot/catalog.js';
import { checkIpxeDir, findIpxeBinaries, noBootProgram, type IpxeCatalog } from './netboot/ipxe.js';
import type { DhcpLogger, Logger } from './observe/log.js';
import { Machines } from './observe/machines.js';
import { Transfers } from './observe/transfers.js';
import { info, warn, type BannerLine, type Service } from './service.js';
import { createTftpService, type TftpService } from './tftp/server.js';
import { createThreadedTftpService } from './tftp/thread.js';

export interface AppOptions {
  config: Config;
  /** The served directory's real path (main.ts checks it exists). */
  root: string;
  version: string;
  logger: Logger & DhcpLogger;
  /** A listening socket from systemd (socket activation) for HTTP. */
  activationFd?: number | undefined;
  /** An open-file cache of the caller's instead of the configured one (tests read its counters). */
  files?: FileCache | undefined;
}

export interface App {
  /** Every service, in start order. */
  readonly services: readonly Service[];
  readonly http: HttpService;
  readonly admin: HttpService | undefined;
  readonly tftp: TftpService | undefined;
  readonly dhcp: DhcpService | undefined;
  readonly transfers: Transfers;
  readonly machines: Machines;
  /** The open-file cache (undefined: --no-file-cache). */
  readonly files: FileCache | undefined;
  /** The iPXE binaries (with --tftp or --proxy-dhcp). */
  readonly ipxe: IpxeCatalog | undefined;
  /** The Secure Boot chain and grub.cfg beside it (netboot/catalog.ts). */
  readonly boot: BootCatalog | undefined;
  /** Start every service in order; if one fails, the ones started are stopped and the error thrown. */
  start(): Promise<void>;
  /** The start banner, every service's lines in order; "iPXE: chain ..." comes last. */
  banner(): BannerLine[];
  /** Stop every service; resolves once all are done (each is bounded). Idempotent. */
  shutdown(graceMs: number): Promise<void>;
  shuttingDown(): boolean;
}

/** A setting that cannot work: main prints the message and exits 1 before binding anything. */
export class ConfigError extends Error {}

/** The generated iPXE menu for `root`, with the configuration's menu settings. */
export function bootMenuFor(root: string, config: Config, warnLine: (message: string) => void): () => Promise<string> {
  // Loaded on the first /boot.ipxe: most starts never need it.
  return async () =>
    (await import('./netboot/bootmenu.js')).generateBootMenu(root, {
      timeoutMs: config.menuTimeoutMs,
      defaultEntry: config.menuDefault,
      dotfiles: config.dotfiles,
      warn: warnLine, // the menu's messages start with "boot menu:"
    });
}

export function buildApp(options: AppOptions): App {
  const { config, root, version } = options;
  const transfers = new Transfers();
  // Every record any service logs also feeds the operator's list of machines (/-/machines).
  const machines = new Machines();
  const logger: Logger & DhcpLogger = {
    ...options.logger,
    access: (record) => (machines.observe(record), options.logger.access(record)),
    dhcp: (record) => (machines.observe(record), options.logger.dhcp(record)),
  };
  let stopping = false;
  const shuttingDown = () => stopping;

  // Refusals come before anything is bound, so a refusal leaves nothing behind.
  const advertised = config.proxyDhcp ? advertisedAddress(config.host, listInterfaces() ?? {}, proxyFlag(config)) : undefined;
  if (advertised?.kind === 'refused') throw new ConfigError(advertised.message);
  // iPXE binaries (the served dir's ipxe/, else --ipxe-dir or the system's package), for TFTP and HTTP.
  const ipxeDirProblem = checkIpxeDir(config.ipxeDir);
  if (ipxeDirProblem) throw new ConfigError(ipxeDirProblem);
  const ipxe: IpxeCatalog | undefined = config.proxyDhcp || config.tftp ? findIpxeBinaries({ root, ipxeDir: config.ipxeDir }) : undefined;
  const noProgram = config.proxyDhcp && ipxe ? noBootProgram(ipxe, root, proxyFlag(config)) : undefined;
  if (noProgram) throw new ConfigError(noProgram);
  // With --secure-boot(-for) also the signed shim → GRUB chain and the generated grub/grub.cfg,
  // through the same two hooks; an unsigned binary in a signed role is refused.
  const boot: BootCatalog | undefined = ipxe && bootFilesFor(config, root, ipxe, () => http.address().port, (m) => logger.error(m));
  if (boot?.refusals[0] !== undefined) throw new ConfigError(boot.refusals[0]);

  const warnings: BannerLine[] = [];
  if (config.stallTimeoutMs === 0)
    warnings.push(warn('warning: --stall-timeout 0 disables the stall guard: a client that stops reading holds its connection forever'));
  // Allowed (a TFTP server of one's own on this host), but usually a mistake: say so.
  if (config.proxyDhcp && !config.tftp) {
    warnings.push(
      warn(
        'warning: --proxy-dhcp without --tftp: BIOS and UEFI PXE firmware is sent to this host for its boot program over TFTP; ' +
        'use --pxe unless another TFTP server runs here',
      ),
    );
  }

  const services: Service[] = [];
  const httpOptions: HttpOptions = {
    name: 'http',
    port: config.port,
    host: config.host,
    fd: options.activationFd,
    headerTimeoutMs: config.headerTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    stallTimeoutMs: config.stallTimeoutMs,
    listing: config.listing,
    dotfiles: config.dotfiles,
  };
  const adminState: AdminState = { version, root, settings: config, transfers, machines, ready: () => !stopping, services: () => services };
  const admin = config.admin ? (req: import('node:http').IncomingMessage) => adminReply(req, adminState) : undefined;
  // Connections and transfers (HTTP and TFTP) need descriptors before the cache does.
  const files = options.files ?? fileCacheFor(config, () => http.stats.connections + transfers.active.size);

  // 1. HTTP first: the proxy's answers name its bound port.
  const http = createHttpService(httpOptions, {
    root,
    logger,
    transfers,
    files,
    bootMenu: config.bootMenu ? bootMenuFor(root, config, (m) => logger.error(m)) : undefined,
    ipxeFile: boot?.file,
    ipxeBinaries: ipxe?.external,
    admin: config.adminListen === undefined ? admin : undefined,
    shuttingDown,
  });
  services.push(http);

  // 2. The admin listener, when /-/ is served apart from the files: the same service, no files.
  let adminService: HttpService | undefined;
  if (admin && config.adminListen !== undefined) {
    const { host, port } = parseHostPort(config.adminListen);
    adminService = createHttpService(
      { ...httpOptions, name: 'admin', host, port, fd: undefined },
      { root: undefined, logger, transfers, admin, shuttingDown },
    );
    services.push(adminService);
  }

  // 2b. --host names one address that is not loopback: the admin pages on 127.0.0.1 too (admin/local.ts).
  if (admin && config.adminListen === undefined && options.activationFd === undefined && needsLocalAdmin(config.host)) {
    const create = (port: number) =>
      createHttpService(
        { ...httpOptions, name: 'admin', host: '127.0.0.1', port, fd: undefined },
        { root: undefined, logger, transfers, admin, shuttingDown },
      );
    services.push(createLocalAdmin({ port: () => http.address().port, create, elsewhere: () => `${urlsFor(http.address())[0]}-/` }));
  }

  // TFTP and proxyDHCP run on threads of their own (a storm's HTTP streaming must not delay
  // them: docs/storm.md), except with Secure Boot, whose per-machine chain lives on this thread.
  const threads = !config.secureBoot && config.secureBootFor === undefined;

  // 3. TFTP, for PXE firmware's boot program.
  let tftp: TftpService | undefined;
  if (config.tftp) {
    const tftpOptions = {
      port: config.tftpPort,
      host: config.host,
      maxBlksize: config.tftpMaxBlksize,
      timeoutMs: config.tftpTimeoutMs,
      maxTransfers: config.tftpMaxTransfers,
      maxPerClient: config.tftpMaxPerClient,
      dotfiles: config.dotfiles,
    };
    // On a thread of its own (lockstep firmware waits a loop turn per packet: tftp/thread.ts),
    // unless Secure Boot's per-machine files must be consulted on this thread.
    tftp = threads
      ? createThreadedTftpService(tftpOptions, {
          root,
          logger,
          transfers,
          ipxe: ipxe ? { ipxeDir: config.ipxeDir } : undefined,
          shed: () => void files?.shed(),
        })
      : createTftpService(tftpOptions, {
          root,
          logger,
          transfers,
          fallback: (segments) => boot?.file(segments.join('/')),
          shed: () => void files?.shed(),
        });
    services.push(tftp);
  }

  // 4. proxyDHCP last: once it answers, firmware comes for the other three.
  let dhcp: DhcpService | undefined;
  if (advertised?.kind === 'address' && ipxe) {
    const { address } = advertised;
    // On a thread of its own where nothing per machine is consulted (dhcp/thread.ts).
    dhcp = (threads ? createThreadedDhcpService : createDhcpService)({
      policy: () => ({ serverAddress: address, httpPort: http.address().port, binaryFor: ipxe.binaryFor, signedFor: boot?.signedFor }),
      log: (record) => logger.dhcp(record),
      error: (message) => logger.error(message),
    });
    services.push(dhcp);
  }

  const started: Service[] = [];
  let closing: Promise<void> | undefined;
  const app: App = {
    services,
    http,
    admin: adminService,
    tftp,
    dhcp,
    transfers,
    machines,
    files,
    ipxe,
    boot,
    shuttingDown,
    async start() {
      for (const service of services) {
        try {
          await service.start();
        } catch (err) {
          await Promise.all(started.map((s) => s.shutdown(0)));
          throw err;
        }
        started.push(service);
      }
    },
    banner() {
      const urls = urlsFor(http.address());
      const catalog = [
        ...(ipxe?.banner() ?? []).map(info),
        ...(boot?.banner() ?? []).map((line) => (line.includes(': warning:') ? warn(line) : info(line))),
      ];
      return [
        ...warnings,
        ...catalog,
        info(`serving ${root}`),
        ...services.flatMap((s) => s.banner()),
        info(`iPXE: chain ${urls[0]}boot.ipxe`),
      ];
    },
    shutdown(graceMs) {
      stopping = true;
      closing ??= Promise.all(started.map((s) => s.shutdown(graceMs))).then(() => boot?.close());
      return closing;
    },
  };
  return app;
}
