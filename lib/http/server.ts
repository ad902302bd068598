// The HTTP server: timeouts, connection caps and graceful shutdown around handleRequest.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { handleRequest, type Context } from './handler.js';

export interface BootServer {
  http: Server;
  /**
   * Stop accepting, let in-flight responses finish for up to `graceMs`, then destroy what
   * remains (those are logged with the outcome "shutdown"). Resolves once every connection is
   * gone and every response has been recorded, so the caller may exit at once.
   */
  shutdown(graceMs: number): Promise<void>;
}

/**
 * After the cut, how long shutdown waits for the cut responses to be recorded. Each one only
 * has its file descriptor to close, so this bound matters only if something hangs.
 */
const RECORD_WAIT_MS = 2000;

export function createBootServer(ctx: Context): BootServer {
  const { config, metrics, logger } = ctx;
  // Sockets destroyed because the grace ended: their transfers' outcome is "shutdown".
  const cut = new WeakSet<Socket>();
  const serving: Context = { ...ctx, cutByShutdown: (socket) => cut.has(socket) };
  // Every request being handled, until its access-log line is written.
  const handling = new Set<Promise<void>>();
  const server = createServer(
    {
      // Node checks header and request deadlines on this interval (30 s by default): a
      // slowloris would otherwise hold its socket up to 30 s past --header-timeout.
      connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(config.headerTimeoutMs / 4))),
      headersTimeout: config.headerTimeoutMs,
      requestTimeout: config.headerTimeoutMs * 2,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      noDelay: true,
    },
    (req, res) => {
      const handled = handleRequest(req, res, serving).catch((err: unknown) => {
        logger.error(`request failed: ${err instanceof Error ? err.stack : String(err)}`);
        res.destroy();
      });
      handling.add(handled);
      void handled.then(() => handling.delete(handled));
    },
  );

  admitConnections(server, ctx);
  // Once listening, an 'error' is an accept() failure (EMFILE, ENFILE): log it and go on.
  server.on('error', (err) => {
    if (server.listening) logger.error(`accept failed: ${err.message}`);
  });
  // A socket error after the response (ECONNRESET and the like) is the client's business.
  server.on('connection', (socket: Socket) => socket.on('error', () => {}));
  // Open sockets, for cutAll (node:http destroys them, but does not say which it destroyed).
  const connections = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });

  // server.close() calls back once the last socket has closed, but a response on a socket
  // destroyed by the cut is recorded only later, after sendBody has closed its file: exiting
  // on server.close() alone lost the access-log line of every transfer cut at the grace's end.
  // So shutdown also waits for the handlers (bounded, in case one hangs).
  let closing: Promise<void> | undefined;
  function shutdown(graceMs: number): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      const check = () => {
        // HTTP responses only: TFTP transfers in the same Metrics have a shutdown of their own.
        if (metrics.activeOf('http').length === 0 || Date.now() >= deadline) cutAll();
        else timer = setTimeout(check, 100);
      };
      check();
      void closed.then(async () => {
        clearTimeout(timer);
        let bound: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((done) => (bound = setTimeout(done, RECORD_WAIT_MS)));
        await Promise.race([Promise.all(handling), timeout]);
        clearTimeout(bound);
        resolve();
      });
    });
    return closing;
  }

  /** The grace is over: destroy every connection left, marking the ones still open as cut. */
  function cutAll(): void {
    for (const socket of connections) if (!socket.destroyed) cut.add(socket);
    server.closeAllConnections();
  }
  return { http: server, shutdown };
}

const REJECT = Buffer.from(
  'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n',
  'latin1',
);

/**
 * Count connections in total and per client address; beyond either cap, answer 503 with
 * Retry-After (iPXE honours it) and close, without handing the socket to the HTTP parser.
 */
function admitConnections(server: Server, ctx: Context): void {
  const { config, metrics } = ctx;
  const perIp = new Map<string, number>();
  const [httpListener] = server.listeners('connection') as ((socket: Socket) => void)[];
  if (!httpListener) throw new Error('node:http registered no connection listener');
  server.removeListener('connection', httpListener);

  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const count = perIp.get(ip) ?? 0;
    const reason = metrics.connections >= config.maxConnections ? 'max-connections' : count >= config.maxConnectionsPerIp ? 'max-connections-per-ip' : undefined;
    if (reason) {
      metrics.reject(reason);
      socket.on('error', () => {});
      // Discard what the client sends so that its close is seen; end() after the reply, and a
      // hard stop shortly after in case the client never reads it.
      socket.resume();
      socket.end(REJECT);
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    metrics.connections++;
    perIp.set(ip, count + 1);
    socket.once('close', () => {
      metrics.connections--;
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left === 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
    httpListener.call(server, socket);
  });
}
