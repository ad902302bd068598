// The request path, top to bottom: the open-file cache, or resolve → open and stat → decide
// status and headers → send the body through the stall-guarded loop → record the outcome.
import { read } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { displayAddress } from '../net/addresses.js';
import type { Logger } from '../observe/log.js';
import type { Transfers } from '../observe/transfers.js';
import { fileError, openRegular, parseRequestPath, resolveInRoot } from '../paths.js';
import { evaluatePreconditions, ifRangeAllows } from './conditional.js';
import { FileCache, OpenFile, SMALL_FILE } from './filecache.js';
import { readListing, renderListingHtml, wantsJson, type ListingEntry } from './listing.js';
import { multipartBody } from './multipart.js';
import type { AckWatcher } from './progress.js';
import { parseRange } from './range.js';
import { bodyReply, textReply, unavailable, type Reply } from './reply.js';
import type { HttpStats } from './stats.js';
import { sendBody, TransferEngine, type BodyPart } from './transfer.js';

/** How requests are answered: the narrow part of the configuration the handler reads. */
export interface HandlerOptions {
  /** Abort a transfer after this long without progress; 0 disables the guard. */
  stallTimeoutMs: number;
  listing: boolean;
  dotfiles: boolean;
}

export interface Context {
  options: HandlerOptions;
  /** The served directory's real path; undefined: no files here, only /-/ (the admin listener). */
  root: string | undefined;
  logger: Logger;
  stats: HttpStats;
  transfers: Transfers;
  engine: TransferEngine;
  watcher: AckWatcher;
  /** Generates /boot.ipxe when the directory has none (undefined: turned off). */
  bootMenu?: (() => Promise<string>) | undefined;
  /** Answers requests under /-/ (undefined: 404 there). */
  admin?: ((req: IncomingMessage) => Reply) | undefined;
  shuttingDown: () => boolean;
  /** iPXE binaries from outside the root (e.g. /usr/lib/ipxe), by request name; see netboot/ipxe.ts. */
  ipxeFile?: ((name: string) => string | undefined | Promise<string | undefined>) | undefined;
  /** Those binaries by name (ipxe/snponly.efi), for a listing of ipxe/. */
  ipxeBinaries?: (() => { name: string; path: string }[]) | undefined;
  /** Whether shutdown destroyed this socket when its grace ended (set by the server). */
  cutByShutdown?: ((socket: Socket) => boolean) | undefined;
  /** The open-file cache (undefined: every request opens its file, and closes it after). */
  files?: FileCache | undefined;
}

const readFd = promisify(read);
/** Without a cache: one that keeps nothing, so that both ways share one path. */
const NO_CACHE = new FileCache({ files: 0, bytes: 0 });

/** Decide, then send and record: the whole life of one request. */
export async function handleRequest(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  await sendReply(req, res, await decide(req, ctx), ctx);
}

/** Send a decided reply through the stall-guarded loop, then record its outcome. */
async function sendReply(req: IncomingMessage, res: ServerResponse, reply: Reply, ctx: Context): Promise<void> {
  const method = req.method ?? 'GET';
  if (ctx.shuttingDown() || hasBody(req)) reply.headers['Connection'] = 'close';
  const parts = method === 'HEAD' ? [] : reply.parts;
  const bytesDue = parts.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.end - p.start + 1), 0);
  const client = displayAddress(req.socket.remoteAddress ?? '-');
  const path = req.url ?? '/';

  const transfer = ctx.transfers.begin({ protocol: 'http', client, path, range: reply.range, bytesDue });
  res.writeHead(reply.status, reply.headers);
  const socket = req.socket;
  const result = await sendBody(res, reply.file, parts, {
    stallMs: ctx.options.stallTimeoutMs,
    probe: ctx.watcher.probe(socket),
    abort: () => socket.resetAndDestroy(),
    progress: transfer,
    engine: ctx.engine,
  });
  // Only a complete transfer is sure to be done with the buffer (an aborted write may still hold it).
  if (reply.scratch && result.outcome === 'complete') ctx.engine.buffers.recycle(reply.scratch);
  const outcome = result.outcome !== 'complete' && ctx.cutByShutdown?.(socket) ? 'shutdown' : result.outcome;
  const finished = ctx.transfers.end(transfer, outcome, { status: reply.status }, !reply.internal);
  ctx.stats.finished(reply.status, outcome, result.bytesSent, finished.durationMs);
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

/** Decide the reply: from the cache when it has the file, else from the file system. */
async function decide(req: IncomingMessage, ctx: Context): Promise<Reply> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return textReply(405, 'Method Not Allowed', { Allow: 'GET, HEAD' });
  const url = req.url ?? '/';
  if (url === '/-' || url.startsWith('/-/') || url.startsWith('/-?')) {
    return ctx.admin ? { ...ctx.admin(req), internal: true } : textReply(404, 'Not Found');
  }
  if (ctx.root === undefined) return textReply(404, 'Not Found');
  const target = parseRequestPath(url, ctx.options.dotfiles);
  if (target.kind === 'bad-request') return textReply(400, 'Bad Request');
  if (target.kind === 'not-found') return textReply(404, 'Not Found');

  const files = ctx.files ?? NO_CACHE;
  const path = join(ctx.root, ...target.segments);
  const cached = files.lookup(path);
  if (!cached) return decideFromDisk(req, ctx, ctx.root, target.segments, target.trailingSlash, path);
  try {
    return await fileReply(req, cached, files, path, ctx.engine);
  } catch (err) {
    return errorReply(err, ctx.logger, url);
  }
}

/** The ordinary path: containment and symlinks (paths.ts), open, fstat; the cache keeps the file. */
async function decideFromDisk(
  req: IncomingMessage,
  ctx: Context,
  root: string,
  segments: string[],
  trailingSlash: boolean,
  path: string,
): Promise<Reply> {
  const files = ctx.files ?? NO_CACHE;
  const url = req.url ?? '/';
  try {
    const inRoot = await resolveInRoot(root, segments, ctx.options.dotfiles);
    // A name the root lacks may be an iPXE binary from the system's package (ipxe/undionly.kpxe).
    const real = inRoot ?? (await ctx.ipxeFile?.(segments.join('/'))) ?? null;
    if (real === null) {
      const isMenu = segments.length === 1 && segments[0] === 'boot.ipxe';
      if (isMenu && ctx.bootMenu) return textReply(200, await ctx.bootMenu(), {}, 'generated');
      // A browser asks for its icon on every page: "nothing", rather than a 404 in the log.
      if (segments.length === 1 && segments[0] === 'favicon.ico')
        return { status: 204, headers: { 'Cache-Control': 'max-age=86400' }, parts: [] };
      // The root has no ipxe/, yet ipxe/snponly.efi is served (from the system's package): list those.
      if (isIpxeDir(segments) && (ctx.ipxeBinaries?.().length ?? 0) > 0) return directoryReply(req, ctx, root, null, trailingSlash);
      return textReply(404, 'Not Found');
    }
    const opened = await openFile(real, files);
    if (opened instanceof OpenFile) {
      // Only files under the root: a hit is checked by a stat of the requested path, which an
      // iPXE binary taken from outside the root does not have.
      if (inRoot !== null) files.admit(path, opened);
      return await fileReply(req, opened, files, path, ctx.engine);
    }
    if (opened !== 'directory') return textReply(404, 'Not Found');
    return directoryReply(req, ctx, root, real, trailingSlash || segments.length === 0, isIpxeDir(segments));
  } catch (err) {
    return errorReply(err, ctx.logger, url);
  }
}

/** Open `real` (paths.ts): a regular file stays open, held by the returned OpenFile. */
async function openFile(real: string, files: FileCache): Promise<OpenFile | 'directory' | 'other'> {
  let opened;
  try {
    opened = await openRegular(real);
  } catch (err) {
    // Out of descriptors: the cache gives back its own, and the open is tried once more.
    if (fileError(err) !== 'out-of-descriptors' || (await files.shed()) === 0) throw err;
    opened = await openRegular(real);
  }
  return typeof opened === 'string' ? opened : new OpenFile(opened.fd, opened.stats, real);
}

/** A header that may arrive as a list: only its first value counts. */
const single = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);

/**
 * A regular file, open and held for this request: conditionals, then Range, decide the status;
 * everything from `file`, which the reply (or its transfer) lets go of.
 */
function fileReply(req: IncomingMessage, file: OpenFile, files: FileCache, path: string, engine: TransferEngine): Reply | Promise<Reply> {
  const v = file.validators;
  const size = file.size;
  const headers: OutgoingHttpHeaders = {
    'Accept-Ranges': 'bytes',
    'Last-Modified': file.lastModified,
    ETag: v.etag,
    'Cache-Control': 'no-cache',
  };
  const done = (reply: Reply): Reply => {
    file.release();
    return reply;
  };

  const precondition = evaluatePreconditions(req.headers, v);
  if (precondition === 'not-modified') return done({ status: 304, headers, parts: [] });
  if (precondition === 'precondition-failed') return done(textReply(412, 'Precondition Failed', headers));

  const decision = ifRangeAllows(single(req.headers['if-range']), v) ? parseRange(req.headers.range, size) : { kind: 'full' as const };
  if (decision.kind === 'unsatisfiable') {
    return done(textReply(416, 'Range Not Satisfiable', { ...headers, 'Content-Range': `bytes */${size}` }));
  }
  let reply: Reply;
  if (decision.kind === 'full') {
    const parts = size > 0 ? [{ start: 0, end: size - 1 }] : [];
    reply = { status: 200, headers: fileHeaders(file, file.contentType, size), parts };
  } else {
    const [only] = decision.ranges;
    if (decision.ranges.length === 1 && only) {
      const range = `bytes ${only.start}-${only.end}/${size}`;
      const length = only.end - only.start + 1;
      reply = { status: 206, headers: fileHeaders(file, file.contentType, length, range), parts: [only], range };
    } else {
      const body = multipartBody(decision.ranges, size, file.contentType);
      const range = `bytes ${decision.ranges.map((r) => `${r.start}-${r.end}`).join(',')}/${size}`;
      reply = { status: 206, headers: fileHeaders(file, body.contentType, body.length), parts: body.parts, range };
    }
  }
  // HEAD sends no body, and an empty body needs no file.
  if (req.method === 'HEAD' || reply.parts.length === 0) return done(reply);
  if (file.bytes) {
    reply.parts = slices(reply.parts, file.bytes);
    return done(reply);
  }
  return withBody(reply, file, files, path, engine);
}

/**
 * A file's headers, written out in full: V8 (Node 20) builds `{ ...common, more }` slowly, about
 * 2 µs a response, where a literal costs nothing.
 */
function fileHeaders(file: OpenFile, type: string, length: number, contentRange?: string): OutgoingHttpHeaders {
  const modified = file.lastModified;
  const etag = file.validators.etag;
  return contentRange === undefined
    ? {
        'Accept-Ranges': 'bytes',
        'Last-Modified': modified,
        ETag: etag,
        'Cache-Control': 'no-cache',
        'Content-Type': type,
        'Content-Length': length,
      }
    : {
        'Accept-Ranges': 'bytes', 'Last-Modified': modified, ETag: etag, 'Cache-Control': 'no-cache',
        'Content-Type': type, 'Content-Length': length, 'Content-Range': contentRange,
      };
}

/** The parts as pieces of `whole`, the file's bytes. */
function slices(parts: BodyPart[], whole: Buffer): BodyPart[] {
  return parts.map((p) =>
    Buffer.isBuffer(p) ? p : p.start === 0 && p.end === whole.length - 1 ? whole : whole.subarray(p.start, p.end + 1),
  );
}

/** The reply with its body: bytes read now when small, else ranges the transfer streams from `file`. */
async function withBody(reply: Reply, file: OpenFile, files: FileCache, path: string, engine: TransferEngine): Promise<Reply> {
  let literal: BodyPart[] | Buffer | undefined;
  try {
    literal = await smallBody(reply.parts, file, files, path, engine);
  } catch (err) {
    file.release();
    throw err;
  }
  if (!literal) {
    reply.file = file;
    return reply;
  }
  file.release();
  if (Buffer.isBuffer(literal)) {
    reply.parts = [literal];
    reply.scratch = literal;
  } else reply.parts = literal;
  return reply;
}

/**
 * The body as bytes in memory when it is small, from one read now, so that the transfer holds
 * no descriptor and needs no read stream: a whole small file (parts; the cache may keep it), or
 * one short range of a large file (a recycled buffer: sanboot reads 64 KiB at a time). Undefined:
 * stream the ranges from the descriptor (also when a read comes back short: the file shrank,
 * and the transfer aborts rather than send a short body).
 */
async function smallBody(
  parts: BodyPart[],
  file: OpenFile,
  files: FileCache,
  path: string,
  engine: TransferEngine,
): Promise<BodyPart[] | Buffer | undefined> {
  if (file.size <= SMALL_FILE) {
    const readAt = Date.now();
    const whole = Buffer.allocUnsafeSlow(file.size);
    if ((await readFd(file.fd, whole, 0, file.size, 0)).bytesRead !== file.size) return undefined;
    files.keepBytes(path, file, whole, readAt);
    return slices(parts, whole);
  }
  const [only] = parts;
  if (parts.length !== 1 || !only || Buffer.isBuffer(only) || only.end - only.start + 1 > SMALL_FILE) return undefined;
  const length = only.end - only.start + 1;
  const chunk = await engine.buffers.readAt(file.fd, length, only.start);
  if (chunk.length === length) return chunk;
  engine.buffers.recycle(chunk);
  return undefined;
}

const isIpxeDir = (segments: string[]) => segments.length === 1 && segments[0] === 'ipxe';

/** A listing of `dir` (null: a directory the root lacks); ipxe/ also lists the binaries served from elsewhere. */
async function directoryReply(
  req: IncomingMessage,
  ctx: Context,
  root: string,
  dir: string | null,
  trailingSlash: boolean,
  ipxe = dir === null,
): Promise<Reply> {
  const url = req.url ?? '/';
  if (!trailingSlash) {
    // Relative links in a listing only work below "/dir/"; keep the query string.
    const q = url.indexOf('?');
    const location = q < 0 ? `${url}/` : `${url.slice(0, q)}/${url.slice(q)}`;
    return textReply(301, 'Moved Permanently', { Location: location });
  }
  if (!ctx.options.listing) return textReply(404, 'Not Found');
  const entries = dir === null ? [] : await readListing(root, dir, ctx.options.dotfiles);
  if (ipxe) {
    entries.push(...(await ipxeEntries(ctx, entries)));
    entries.sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'directory' ? -1 : 1));
  }
  if (wantsJson(req.headers.accept)) return bodyReply(200, JSON.stringify(entries) + '\n', 'application/json', { Vary: 'Accept' });
  const pathOnly = decodeURIComponent((url.split('?')[0] as string));
  return bodyReply(200, renderListingHtml(pathOnly, entries), 'text/html; charset=utf-8', { Vary: 'Accept' });
}

/** The iPXE binaries served from outside the root that `entries` (the root's ipxe/) lacks, as listing entries. */
async function ipxeEntries(ctx: Context, entries: ListingEntry[]): Promise<ListingEntry[]> {
  const have = new Set(entries.map((e) => e.name));
  const extra: ListingEntry[] = [];
  for (const { name, path } of ctx.ipxeBinaries?.() ?? []) {
    const base = name.slice('ipxe/'.length);
    if (have.has(base)) continue;
    const s = await stat(path).catch(() => null);
    if (s?.isFile()) extra.push({ name: base, type: 'file', size: s.size, mtime: s.mtime.toISOString() });
  }
  return extra;
}

/** Map a file-system error to an answer; only the unexpected ones are worth a log line. */
export function errorReply(err: unknown, logger: Logger, url: string): Reply {
  switch (fileError(err)) {
    case 'not-found':
      return textReply(404, 'Not Found');
    case 'forbidden':
      return textReply(403, 'Forbidden');
    case 'out-of-descriptors':
      logger.error(`out of file descriptors (${(err as NodeJS.ErrnoException).code}) serving ${url}`);
      return unavailable();
    case 'unexpected':
      logger.error(`error serving ${url}: ${(err as Error).message ?? String(err)}`);
      return textReply(500, 'Internal Server Error');
  }
}
