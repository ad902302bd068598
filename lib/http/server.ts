// The HTTP service: a plain TCP server that admits connections (caps in total and per client
// address; beyond them 503 with Retry-After, without ever reaching the HTTP parser) and hands
// the admitted ones to node:http, which parses requests for handleRequest. Graceful, bounded
// shutdown. The admin listener (--admin-listen) is the same service serving /-/ alone.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { hostLiteral, urlsFor } from '../net/addresses.js';
import { listenAnywhere } from '../net/bind.js';
import { AddressCounter } from '../net/counter.js';
import { drain, InFlight } from '../net/shutdown.js';
import type { Logger } from '../observe/log.js';
import type { MetricFamily } from '../observe/prometheus.js';
import type { Transfers } from '../observe/transfers.js';
import { info, type BannerLine, type Service } from '../service.js';
import type { FileCache } from './filecache.js';
import { handleRequest, type Context, type HandlerOptions } from './handler.js';
import { startHttpDeadlines } from './internals.js';
import { AckWatcher } from './progress.js';
import { RETRY_AFTER_SECONDS, type Reply } from './reply.js';
import { HttpStats } from './stats.js';
import { TransferEngine } from './transfer.js';

export interface HttpOptions extends HandlerOptions {
  /** "HTTP", or "admin" for the admin listener: names it in messages and /-/status. */
  name: 'http' | 'admin';
  port: number;
  /** undefined: every interface, IPv6 and IPv4 on one dual-stack socket. */
  host: string | undefined;
  /** A listening socket inherited from systemd (socket activation), used instead of port and host. */
  fd?: number | undefined;
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export interface HttpDeps {
  /** The served directory's real path; undefined: /-/ only. */
  root: string | undefined;
  logger: Logger;
  transfers: Transfers;
  files?: FileCache | undefined;
  bootMenu?: (() => Promise<string>) | undefined;
  ipxeFile?: ((name: string) => string | undefined | Promise<string | undefined>) | undefined;
  ipxeBinaries?: (() => { name: string; path: string }[]) | undefined;
  admin?: ((req: import('node:http').IncomingMessage) => Reply) | undefined;
  shuttingDown: () => boolean;
}

export interface HttpService extends Service {
  readonly name: 'http' | 'admin';
  /** Where it listens, once started. */
  address(): AddressInfo;
  readonly stats: HttpStats;
  /** node:http's server (for its events in tests; it never listens itself). */
  readonly http: HttpServer;
}

/** After the cut, how long shutdown waits for the cut responses to be recorded. Each one only
 * has its file descriptor to close, so this bound matters only if something hangs. */
const RECORD_WAIT_MS = 2000;

const REJECT = Buffer.from(
  `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${RETRY_AFTER_SECONDS}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    'Content-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n',
  'latin1',
);

export function createHttpService(options: HttpOptions, deps: HttpDeps): HttpService {
  const { logger } = deps;
  const stats = new HttpStats();
  // Sockets destroyed because the grace ended: their transfers' outcome is "shutdown".
  const cut = new WeakSet<Socket>();
  const ctx: Context = {
    options,
    root: deps.root,
    logger,
    stats,
    transfers: deps.transfers,
    engine: new TransferEngine(),
    watcher: new AckWatcher(),
    bootMenu: deps.bootMenu,
    admin: deps.admin,
    ipxeFile: deps.ipxeFile,
    ipxeBinaries: deps.ipxeBinaries,
    files: deps.files,
    shuttingDown: deps.shuttingDown,
    cutByShutdown: (socket) => cut.has(socket),
  };
  // Every request being handled, until its access-log line is written.
  const handling = new InFlight();
  const http = createHttpServer(
    {
      // Node checks header and request deadlines on this interval (30 s by default): a
      // slowloris would otherwise hold its socket up to 30 s past --header-timeout.
      connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(options.headerTimeoutMs / 4))),
      headersTimeout: options.headerTimeoutMs,
      requestTimeout: options.headerTimeoutMs * 2,
      keepAliveTimeout: options.keepAliveTimeoutMs,
      noDelay: true,
    },
    (req, res) => {
      void handling.track(
        handleRequest(req, res, ctx).catch((err: unknown) => {
          logger.error(`request failed: ${err instanceof Error ? err.stack : String(err)}`);
          res.destroy();
        }),
      );
    },
  );
  // Open sockets, for the cut at the end of the grace (node:http destroys them, but does not say which).
  const connections = new Set<Socket>();
  const perIp = new AddressCounter();
  const tcp = createTcpServer({ allowHalfOpen: true, noDelay: true }, (socket) => admit(socket));
  // Once listening, an 'error' is an accept() failure (EMFILE, ENFILE): log it and go on; the
  // file cache gives its idle descriptors back.
  tcp.on('error', (err: NodeJS.ErrnoException) => {
    if (!tcp.listening) return;
    logger.error(`accept failed: ${err.message}`);
    if (err.code === 'EMFILE' || err.code === 'ENFILE') void deps.files?.shed();
  });

  /** Count connections in total and per client address; beyond either cap, 503 and close. */
  function admit(socket: Socket): void {
    // A socket error (ECONNRESET and the like) is the client's business; node:http answers
    // malformed or late requests itself (400, 408) through its default 'clientError'.
    socket.on('error', () => {});
    const ip = socket.remoteAddress ?? '';
    const reason =
      stats.connections >= options.maxConnections
        ? 'max-connections'
        : !perIp.acquire(ip, options.maxConnectionsPerIp)
          ? 'max-connections-per-ip'
          : undefined;
    if (reason) {
      stats.rejected.add(reason);
      // Discard what the client sends so that its close is seen; end() after the reply, and a
      // hard stop shortly after in case the client never reads it.
      socket.resume();
      socket.end(REJECT);
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    stats.connections++;
    connections.add(socket);
    socket.once('close', () => {
      stats.connections--;
      perIp.release(ip);
      connections.delete(socket);
    });
    http.emit('connection', socket);
  }

  let closing: Promise<void> | undefined;
  let deadlines: 'node' | 'idle-timeout' = 'node';
  return {
    name: options.name,
    stats,
    http,
    address: () => tcp.address() as AddressInfo,
    async start() {
      deadlines = startHttpDeadlines(http, options.headerTimeoutMs);
      const portFlag = options.name === 'admin' ? '--admin-listen' : '--port';
      await listenAnywhere(tcp, {
        service: options.name === 'admin' ? 'admin' : 'HTTP',
        protocol: 'TCP',
        address: options.host,
        port: options.port,
        fd: options.fd,
        portFlag,
      });
    },
    banner(): BannerLine[] {
      const at = tcp.address() as AddressInfo;
      if (options.name === 'admin') return [info(`admin on http://${hostLiteral(at.address)}:${at.port}/-/`)];
      const lines = urlsFor(at).map((url) => info(`listening on ${url}`));
      if (deadlines === 'idle-timeout')
        lines.push({
          level: 'warn',
          text: 'warning: this Node does not start node:http deadline checks; header timeouts fall back to idle timeouts',
        });
      return lines;
    },
    metrics: (): MetricFamily[] => (options.name === 'admin' ? [] : stats.families(deps.transfers)),
    status: () => ({ connections: stats.connections, activeTransfers: deps.transfers.activeOf('http').length }),
    // Stop accepting, let in-flight responses finish for up to `graceMs`, then destroy what
    // remains (logged with the outcome "shutdown"). Resolves once every connection is gone and
    // every response has been recorded, so the caller may exit at once.
    shutdown(graceMs: number) {
      closing ??= (async () => {
        tcp.close();
        http.close(); // stops node:http's deadline checks; it never listened, so its callback errs
        http.closeIdleConnections();
        await drain(
          handling,
          graceMs,
          () => {
            for (const socket of connections) if (!socket.destroyed) cut.add(socket);
            http.closeAllConnections();
            for (const socket of connections) socket.destroy();
          },
          RECORD_WAIT_MS,
        );
      })();
      return closing;
    },
  };
}
