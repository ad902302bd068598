// The request path, top to bottom: resolve → open and stat → decide status and headers →
// send the body through the stall-guarded loop → record the outcome.
import { close, constants, fstat, open, type Stats } from 'node:fs';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import type { Config } from '../cli.js';
import { evaluatePreconditions, ifRangeAllows, validatorsOf } from './conditional.js';
import { readListing, renderListingHtml, wantsJson } from './listing.js';
import { displayAddress, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { contentTypeFor } from './mime.js';
import { multipartBody } from './multipart.js';
import { parseRequestPath, resolveInRoot } from '../paths.js';
import { socketProbe } from './progress.js';
import { parseRange } from './range.js';
import { sendBody, type BodyPart } from './transfer.js';

/** What a response will be, decided before a byte of it is sent. */
export interface Reply {
  status: number;
  headers: OutgoingHttpHeaders;
  /** The body GET would get; HEAD gets the same headers and none of it. */
  parts: BodyPart[];
  /** The open file the parts' ranges refer to; sendBody closes it. */
  fd?: number;
  /** "bytes a-b/size" when partial, for the status page. */
  range?: string;
  /** Admin pages: counted, but neither logged nor listed among recent transfers. */
  internal?: boolean;
}

export interface Context {
  config: Config;
  /** The served directory's real path. */
  root: string;
  logger: Logger;
  metrics: Metrics;
  /** Generates /boot.ipxe when the directory has none (undefined: turned off). */
  bootMenu?: (() => Promise<string>) | undefined;
  /** Answers requests under /-/ (undefined: 404 there). */
  admin?: ((req: IncomingMessage) => Reply | Promise<Reply>) | undefined;
  shuttingDown: () => boolean;
  /** iPXE binaries from outside the root (e.g. /usr/lib/ipxe), by request name; see netboot/ipxe.ts. */
  ipxeFile?: ((name: string) => string | undefined) | undefined;
  /** Whether shutdown destroyed this socket when its grace ended (set by the server). */
  cutByShutdown?: ((socket: Socket) => boolean) | undefined;
}

// Plain descriptors, not FileHandles: sendBody hands them to createReadStream and closes them.
const openFd = promisify(open);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);

export async function handleRequest(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  return sendReply(req, res, await decide(req, ctx), ctx);
}

/** Send a decided reply through the stall-guarded loop, then record its outcome. */
export async function sendReply(req: IncomingMessage, res: ServerResponse, reply: Reply, ctx: Context): Promise<void> {
  const method = req.method ?? 'GET';
  if (ctx.shuttingDown() || hasBody(req)) reply.headers['Connection'] = 'close';
  const parts = method === 'HEAD' ? [] : reply.parts;
  const bytesDue = parts.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.end - p.start + 1), 0);
  const client = displayAddress(req.socket.remoteAddress ?? '-');
  const path = req.url ?? '/';

  const transfer = ctx.metrics.begin({ client, path, range: reply.range, bytesDue });
  res.writeHead(reply.status, reply.headers);
  const socket = req.socket;
  const result = await sendBody(res, reply.fd, parts, {
    stallMs: ctx.config.stallTimeoutMs,
    probe: socketProbe(socket),
    abort: () => socket.resetAndDestroy(),
    progress: transfer,
  });
  const outcome = result.outcome !== 'complete' && ctx.cutByShutdown?.(socket) ? 'shutdown' : result.outcome;
  const finished = ctx.metrics.end(transfer, reply.status, outcome, !reply.internal);
  if (reply.internal) return;
  ctx.logger.access({
    protocol: 'http',
    time: finished.finishedAt,
    client,
    method,
    path,
    status: reply.status,
    bytesSent: result.bytesSent,
    bytesDue,
    durationMs: finished.durationMs,
    outcome,
    userAgent: req.headers['user-agent'] ?? '-',
  });
}

/** A request that carries a body we will not read: do not keep its connection. */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
}

async function decide(req: IncomingMessage, ctx: Context): Promise<Reply> {
  const { config, root } = ctx;
  if (req.method !== 'GET' && req.method !== 'HEAD') return textReply(405, 'Method Not Allowed', { Allow: 'GET, HEAD' });
  const url = req.url ?? '/';
  if (url === '/-' || url.startsWith('/-/') || url.startsWith('/-?')) {
    return ctx.admin ? { ...(await ctx.admin(req)), internal: true } : textReply(404, 'Not Found');
  }
  const target = parseRequestPath(url, config.dotfiles);
  if (target.kind === 'bad-request') return textReply(400, 'Bad Request');
  if (target.kind === 'not-found') return textReply(404, 'Not Found');

  try {
    // A name the root lacks may be an iPXE binary from the system's package (ipxe/undionly.kpxe).
    const real = (await resolveInRoot(root, target.segments, config.dotfiles)) ?? ctx.ipxeFile?.(target.segments.join('/')) ?? null;
    if (real === null) {
      const isMenu = target.segments.length === 1 && target.segments[0] === 'boot.ipxe';
      return isMenu && ctx.bootMenu ? textReply(200, await ctx.bootMenu(), {}, 'generated') : textReply(404, 'Not Found');
    }
    // O_NONBLOCK: opening a FIFO that somebody left in the directory must not hang us.
    const fd = await openFd(real, constants.O_RDONLY | constants.O_NONBLOCK);
    let stats: Stats;
    try {
      stats = await fstatFd(fd);
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
    if (stats.isFile()) return fileReply(req, fd, stats, real);
    await closeFd(fd);
    if (!stats.isDirectory()) return textReply(404, 'Not Found');
    return directoryReply(req, ctx, real, target.trailingSlash || target.segments.length === 0);
  } catch (err) {
    return errorReply(err, ctx.logger, url);
  }
}

/** A header that may arrive as a list: only its first value counts. */
const single = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);

/** A regular file, open: conditionals, then Range, decide the status; everything from `fd`. */
function fileReply(req: IncomingMessage, fd: number, stats: Stats, path: string): Reply {
  const v = validatorsOf(stats);
  const size = stats.size;
  const type = contentTypeFor(path);
  const headers: OutgoingHttpHeaders = {
    'Accept-Ranges': 'bytes',
    'Last-Modified': new Date(v.lastModified).toUTCString(),
    ETag: v.etag,
    'Cache-Control': 'no-cache',
  };
  const done = (reply: Reply): Reply => {
    close(fd, () => {});
    return reply;
  };

  const precondition = evaluatePreconditions(req.headers, v);
  if (precondition === 'not-modified') return done({ status: 304, headers, parts: [] });
  if (precondition === 'precondition-failed') return done(textReply(412, 'Precondition Failed', headers));

  const decision = ifRangeAllows(single(req.headers['if-range']), v) ? parseRange(req.headers.range, size) : { kind: 'full' as const };
  if (decision.kind === 'unsatisfiable') {
    return done(textReply(416, 'Range Not Satisfiable', { ...headers, 'Content-Range': `bytes */${size}` }));
  }
  if (decision.kind === 'full') {
    const parts = size > 0 ? [{ start: 0, end: size - 1 }] : [];
    return { status: 200, headers: { ...headers, 'Content-Type': type, 'Content-Length': size }, parts, fd };
  }
  const [only] = decision.ranges;
  if (decision.ranges.length === 1 && only) {
    const range = `bytes ${only.start}-${only.end}/${size}`;
    const length = only.end - only.start + 1;
    return { status: 206, headers: { ...headers, 'Content-Type': type, 'Content-Length': length, 'Content-Range': range }, parts: [only], fd, range };
  }
  const body = multipartBody(decision.ranges, size, type);
  const range = `bytes ${decision.ranges.map((r) => `${r.start}-${r.end}`).join(',')}/${size}`;
  return { status: 206, headers: { ...headers, 'Content-Type': body.contentType, 'Content-Length': body.length }, parts: body.parts, fd, range };
}

async function directoryReply(req: IncomingMessage, ctx: Context, dir: string, trailingSlash: boolean): Promise<Reply> {
  const url = req.url ?? '/';
  if (!trailingSlash) {
    // Relative links in a listing only work below "/dir/"; keep the query string.
    const q = url.indexOf('?');
    const location = q < 0 ? `${url}/` : `${url.slice(0, q)}/${url.slice(q)}`;
    return textReply(301, 'Moved Permanently', { Location: location });
  }
  if (!ctx.config.listing) return textReply(404, 'Not Found');
  const entries = await readListing(ctx.root, dir, ctx.config.dotfiles);
  if (wantsJson(req.headers.accept)) return bodyReply(200, JSON.stringify(entries) + '\n', 'application/json', { Vary: 'Accept' });
  const pathOnly = decodeURIComponent((url.split('?')[0] as string));
  return bodyReply(200, renderListingHtml(pathOnly, entries), 'text/html; charset=utf-8', { Vary: 'Accept' });
}

export function bodyReply(status: number, body: string, type: string, extra: OutgoingHttpHeaders = {}): Reply {
  const bytes = Buffer.from(body);
  return { status, headers: { ...extra, 'Content-Type': type, 'Content-Length': bytes.length, 'Cache-Control': 'no-cache' }, parts: [bytes] };
}

/** A short text answer; errors get "404 Not Found" as their body. */
export function textReply(status: number, message: string, extra: OutgoingHttpHeaders = {}, kind: 'error' | 'generated' = 'error'): Reply {
  const body = kind === 'error' ? `${status} ${message}\n` : message;
  return bodyReply(status, body, 'text/plain; charset=utf-8', extra);
}

/** Map a file-system error to an answer; only the unexpected ones are worth a log line. */
export function errorReply(err: unknown, logger: Logger, url: string): Reply {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ELOOP':
    case 'ENAMETOOLONG':
      return textReply(404, 'Not Found');
    case 'EACCES':
    case 'EPERM':
      return textReply(403, 'Forbidden');
    case 'EMFILE':
    case 'ENFILE':
      logger.error(`out of file descriptors (${code}) serving ${url}`);
      return textReply(503, 'Service Unavailable', { 'Retry-After': '5' });
    default:
      logger.error(`error serving ${url}: ${(err as Error).message ?? String(err)}`);
      return textReply(500, 'Internal Server Error');
  }
}
