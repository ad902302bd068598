// The HTTP server: timeouts, connection caps and graceful shutdown around handleRequest.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { handleRequest, type Context } from './handler.js';

export interface BootServer {
  http: Server;
  /**
   * Stop accepting, let in-flight responses finish for up to `graceMs`, then destroy what
   * remains. Resolves once every connection is gone.
   */
  shutdown(graceMs: number): Promise<void>;
}

export function createBootServer(ctx: Context): BootServer {
  const { config, metrics, logger } = ctx;
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
      handleRequest(req, res, ctx).catch((err: unknown) => {
        logger.error(`request failed: ${err instanceof Error ? err.stack : String(err)}`);
        res.destroy();
      });
    },
  );

  admitConnections(server, ctx);
  // Once listening, an 'error' is an accept() failure (EMFILE, ENFILE): log it and go on.
  server.on('error', (err) => {
    if (server.listening) logger.error(`accept failed: ${err.message}`);
  });
  // A socket error after the response (ECONNRESET and the like) is the client's business.
  server.on('connection', (socket: Socket) => socket.on('error', () => {}));

  let closing: Promise<void> | undefined;
  function shutdown(graceMs: number): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      const check = () => {
        if (metrics.active.size === 0 || Date.now() >= deadline) server.closeAllConnections();
        else timer = setTimeout(check, 100);
      };
      check();
    });
    return closing;
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
