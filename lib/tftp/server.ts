// The TFTP service's sockets: a request socket per local address, and per transfer a socket of
// its own (its TID) bound to the address the request came to. Everything between a request and
// its outcome is a straight line: decode → admit → resolve and open → negotiate → transfer → record.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { close } from 'node:fs';
import { isIPv6 } from 'node:net';
import { displayAddress, hostLiteral, localAddresses } from '../net/addresses.js';
import { BindError, bindUdp, closeUdp } from '../net/bind.js';
import { roomForABurst } from '../net/buffers.js';
import { drain, InFlight } from '../net/shutdown.js';
import { LogBudget, type Logger } from '../observe/log.js';
import type { ActiveTransfer, Transfers } from '../observe/transfers.js';
import { fileError, openRegular, parseFileName, resolveInRoot } from '../paths.js';
import { info, warn, type BannerLine, type Service } from '../service.js';
import { TftpAdmission } from './admission.js';
import { negotiate } from './options.js';
import { decode, encodeError, ErrorCode, type Request } from './packet.js';
import { BlockSource, netasciiReader, octetReader } from './source.js';
import { TftpStats, type RefusalReason } from './stats.js';
import { TftpTransfer, type TransferEnd } from './transfer.js';

export interface TftpOptions {
  port: number;
  /** undefined: a request socket on every local address. */
  host: string | undefined;
  /** Largest block size granted, counting a 20-byte IPv4 header (--tftp-max-blksize). */
  maxBlksize: number;
  /** Give up a transfer after this long without an acknowledgement that moves it. */
  timeoutMs: number;
  maxTransfers: number;
  maxPerClient: number;
  dotfiles: boolean;
}

export interface TftpDeps {
  /** The served directory's real path. */
  root: string;
  logger: Logger;
  transfers: Transfers;
  /** A file from outside the root for a name the root does not have (the system's iPXE binaries). */
  fallback?: ((segments: string[]) => string | undefined | Promise<string | undefined>) | undefined;
  /** Out of descriptors: whoever keeps some idle (the HTTP file cache) gives them back. */
  shed?: (() => void) | undefined;
}

export interface TftpService extends Service {
  readonly name: 'tftp';
  /** Where requests are taken, once started: one per local address. */
  addresses(): { address: string; port: number }[];
  readonly stats: TftpStats;
}

/**
 * Requests beyond the caps wait unanswered; their clients are remembered (bounded: a flood of
 * forged requests cannot grow it) and forgotten once silent for longer than any firmware waits
 * between resends (edk2 and PXE ROMs 4 s, iPXE at most 10 s).
 */
const WAITERS_REMEMBERED = 4096;
const FORGET_WAITER_MS = 12_000;

/** Retransmission starts at 1 s unless the client negotiated its own timeout. */
const RETRANSMIT_MS = 1000;
/** After the grace, how long shutdown waits for the transfers it stopped to be recorded. */
const RECORD_WAIT_MS = 2000;

/** Close, whatever happens: a failed close (EIO on a network file system) must not end the process. */
const closeQuietly = (fd: number) => new Promise<void>((resolve) => close(fd, () => resolve()));

export function createTftpService(options: TftpOptions, deps: TftpDeps): TftpService {
  const stats = new TftpStats();
  const ctx: Ctx = {
    ...deps,
    options,
    stats,
    closing: false,
    running: new Set(),
    busy: new Set(),
    admission: new TftpAdmission({
      maxTransfers: options.maxTransfers,
      maxPerClient: options.maxPerClient,
      maxWaiters: WAITERS_REMEMBERED,
      forgetAfterMs: FORGET_WAITER_MS,
    }),
    refusalLog: new LogBudget(20, (n) =>
      deps.logger.error(`tftp: ${n} more refused requests in the last second were counted but not logged`),
    ),
  };
  const requests = new InFlight();
  const sockets: Socket[] = [];
  const bound: { address: string; port: number }[] = [];
  const skipped: string[] = [];
  let closing: Promise<void> | undefined;

  async function listen(address: string): Promise<void> {
    const socket = createSocket({ type: isIPv6(address.split('%')[0] as string) ? 'udp6' : 'udp4' });
    try {
      await bindUdp(socket, {
        service: 'TFTP',
        protocol: 'UDP',
        address,
        port: options.port,
        usualSuspects: 'another TFTP server: tftpd-hpa, atftpd or dnsmasq?',
      });
    } catch (err) {
      // A tentative or vanished IPv6 address need not stop the others.
      if (err instanceof BindError && err.code === 'EADDRNOTAVAIL' && options.host === undefined) return void skipped.push(address);
      throw err;
    }
    // A storm's requests (and their resends) come in bursts: room for thousands of them.
    roomForABurst(socket);
    sockets.push(socket);
    bound.push({ address, port: socket.address().port });
    socket.on('message', (msg, rinfo) => {
      void requests.track(
        onRequest(ctx, socket, address, msg, rinfo).catch((err: unknown) =>
          deps.logger.error(`tftp: request from ${rinfo.address}: ${err instanceof Error ? err.message : String(err)}`),
        ),
      );
    });
    socket.on('error', (err) => deps.logger.error(`tftp: ${address}: ${err.message}`));
  }

  return {
    name: 'tftp',
    stats,
    addresses: () => bound,
    async start() {
      try {
        for (const address of listenAddresses(options.host)) await listen(address);
      } catch (err) {
        await Promise.all(sockets.map(closeUdp));
        throw err;
      }
    },
    banner(): BannerLine[] {
      const at = bound.map((a) => hostLiteral(a.address)).join(', ');
      return [
        ...skipped.map((a) => warn(`tftp: not listening on ${a}: address not available`)),
        info(`TFTP on UDP port ${bound[0]?.port ?? options.port} (${at})`),
      ];
    },
    metrics: () => stats.families(deps.transfers, ctx.admission.queue()),
    status: () => {
      const queue = ctx.admission.queue();
      const waiting = { waiting: queue.waiting, oldestWaitSeconds: queue.oldestWaitMs / 1000 };
      return { addresses: bound, activeTransfers: ctx.running.size, queue: waiting };
    },
    // Resolves once every request has ended and been recorded; a request still being opened when
    // the grace ends is stopped as soon as its transfer starts.
    shutdown: (graceMs) =>
      (closing ??= (async () => {
        ctx.closing = true;
        await Promise.all(sockets.map(closeUdp));
        await drain(requests, graceMs, () => {
          for (const t of ctx.running) t.abort('shutdown', 'server shutting down');
        }, RECORD_WAIT_MS);
      })()),
  };
}

/** The service's state, across the request sockets. */
interface Ctx extends TftpDeps {
  options: TftpOptions;
  stats: TftpStats;
  /** Shutting down: a transfer that has not started yet is not started, and says so. */
  closing: boolean;
  running: Set<TftpTransfer>;
  /** Refusals are logged, within a budget: anyone can send RRQs from forged addresses. */
  refusalLog: LogBudget;
  /** Clients ("address|port") with a transfer starting or running: a repeated RRQ starts nothing. */
  busy: Set<string>;
  /** The caps, and who waits for a slot (first come first served). */
  admission: TftpAdmission;
}

/**
 * The addresses to take requests on. Node cannot tell which local address a datagram was sent
 * to, and a reply must leave from that address (firmware locks onto it), so without --host
 * there is a socket per local address, not one on the wildcard.
 */
export function listenAddresses(host: string | undefined): string[] {
  if (host !== undefined && host !== '::' && host !== '0.0.0.0') return [host];
  const all = localAddresses();
  if (!all) return ['0.0.0.0']; // no netlink: replies leave from the routed address
  return all
    .filter((i) => host !== '0.0.0.0' || i.family === 'IPv4')
    .map((i) => (i.family === 'IPv6' && i.address.startsWith('fe80') ? `${i.address}%${i.name}` : i.address));
}

async function onRequest(ctx: Ctx, socket: Socket, localAddress: string, msg: Buffer, rinfo: RemoteInfo): Promise<void> {
  const { stats, busy, admission } = ctx;
  const client = displayAddress(rinfo.address);
  const packet = decode(msg);
  const refuse = (reason: RefusalReason, code: number, message: string) => {
    stats.refuse(reason);
    reply(socket, encodeError(code, message), rinfo);
    if ((packet.op === 'rrq' || packet.op === 'wrq') && ctx.refusalLog.take()) logRefusal(ctx, client, packet, `ERROR ${code}: ${message}`);
  };
  if (packet.op === 'malformed') {
    // A request we cannot read gets ERROR 4; anything else on this port gets nothing, so two
    // servers cannot be set to answer each other's errors forever.
    const opcode = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
    // Fixed, short messages: an answer never echoes what the client sent.
    if (opcode === 1 || opcode === 2) return refuse('malformed', ErrorCode.illegalOperation, 'malformed request');
    return stats.ignore('malformed');
  }
  if (packet.op === 'wrq') return refuse('write-request', ErrorCode.accessViolation, 'read-only server');
  if (packet.op !== 'rrq') return stats.ignore('not-a-request');
  if (packet.mode !== 'octet' && packet.mode !== 'netascii')
    return refuse('unsupported-mode', ErrorCode.illegalOperation, 'unsupported mode: octet or netascii only');

  const key = `${client}|${rinfo.port}`;
  // The client resent its request before our first packet reached it: the transfer is under way.
  if (busy.has(key)) return stats.ignore('duplicate-request');
  // At a cap the request is not answered: firmware fails its boot on any ERROR, but resends an
  // unanswered request, and the resend is admitted once a slot is free, in order of arrival.
  const admitted = admission.request(key, client);
  if (admitted.kind !== 'admit')
    return stats.wait(admitted.kind === 'overflow' ? 'overflow' : admitted.cause === 'server' ? 'server-cap' : 'client-cap');
  if (admitted.waitedMs > 0) stats.admittedAfter(admitted.waitedMs);
  busy.add(key);
  let released = false;
  // Once the transfer has ended the client may ask again from the same port, before our cleanup.
  const release = () => {
    if (released) return;
    released = true;
    busy.delete(key);
    admission.release(client);
  };
  try {
    const opened = await openRequested(ctx, packet);
    if ('wait' in opened) return stats.wait(opened.wait);
    if ('refusal' in opened) return refuse(opened.refusal, opened.code, opened.message);
    await transfer(ctx, packet, opened, localAddress, rinfo, client, release);
  } finally {
    release();
  }
}

type Opened = { fd: number; size: number } | { refusal: RefusalReason; code: number; message: string } | { wait: 'descriptors' };

/** Resolve the name by the rules HTTP uses and open it, before any OACK (PXELINUX and others are
 * confused by an error after one). */
async function openRequested(ctx: Ctx, request: Request): Promise<Opened> {
  const notFound: Opened = { refusal: 'not-found', code: ErrorCode.notFound, message: 'file not found' };
  const target = parseFileName(request.file, ctx.options.dotfiles);
  if (target.kind !== 'ok' || target.segments.length === 0) return notFound;
  try {
    const path = (await resolveInRoot(ctx.root, target.segments, ctx.options.dotfiles)) ?? (await ctx.fallback?.(target.segments));
    if (path === undefined || path === null) return notFound;
    const opened = await openRegular(path);
    return typeof opened === 'string' ? notFound : { fd: opened.fd, size: opened.stats.size };
  } catch (err) {
    switch (fileError(err)) {
      case 'not-found':
        return notFound;
      case 'forbidden':
        return { refusal: 'access-denied', code: ErrorCode.accessViolation, message: 'access violation' };
      case 'out-of-descriptors':
        // Load, not the client's fault: no answer; its resend finds the descriptors given back.
        ctx.shed?.();
        return { wait: 'descriptors' };
      case 'unexpected':
        ctx.logger.error(`tftp: cannot open ${JSON.stringify(request.file)}: ${(err as Error).message}`);
        return { refusal: 'open-failed', code: ErrorCode.undefined, message: 'cannot read file' };
    }
  }
}

/** Run one transfer on its own socket and record it. Owns the file: closed before the record. */
async function transfer(
  ctx: Ctx,
  request: Request,
  file: { fd: number; size: number },
  localAddress: string,
  rinfo: RemoteInfo,
  client: string,
  release: () => void,
): Promise<void> {
  const { options, transfers, stats } = ctx;
  const netascii = request.mode === 'netascii';
  // --tftp-max-blksize counts a 20-byte IPv4 header; an IPv6 one is 20 bytes longer.
  const maxBlksize = options.maxBlksize - (rinfo.family === 'IPv6' ? 20 : 0);
  const params = negotiate(request.options, netascii ? undefined : file.size, { maxBlksize, maxTimeoutMs: options.timeoutMs / 4 });
  const socket = createSocket({ type: rinfo.family === 'IPv6' ? 'udp6' : 'udp4' });
  try {
    await bindUdp(socket, { service: 'TFTP', protocol: 'UDP', address: localAddress, port: 0 });
    socket.on('error', () => {}); // until the transfer listens; see below
    await connect(socket, rinfo);
  } catch (err) {
    await closeUdp(socket);
    await closeQuietly(file.fd);
    ctx.logger.error(`tftp: no socket for ${client}: ${(err as Error).message}`);
    stats.refuse('open-failed');
    return;
  }
  if (ctx.closing) {
    // Opened while the server began to stop: no transfer starts now.
    socket.send(encodeError(ErrorCode.undefined, 'server shutting down'), () => socket.close());
    logRefusal(ctx, client, request, 'ERROR 0: server shutting down');
    return closeQuietly(file.fd);
  }

  const live = transfers.begin({ protocol: 'tftp', client, path: request.file, range: undefined, bytesDue: file.size });
  const source = new BlockSource(
    (netascii ? netasciiReader : octetReader)(file.fd, file.size),
    params.blksize,
    params.blksize * params.windowsize,
  );
  const t = new TftpTransfer(
    {
      blksize: params.blksize,
      windowsize: params.windowsize,
      oack: params.oack,
      retransmitMs: params.timeoutMs ?? RETRANSMIT_MS,
      giveUpMs: options.timeoutMs,
    },
    {
      source,
      send: (packet) => {
        try {
          socket.send(packet);
        } catch {
          // the socket is closed: the transfer is over
        }
      },
      progress: live,
    },
  );
  // The socket is connected: the kernel drops datagrams from anyone but the client's TID.
  socket.on('message', (msg) => {
    const packet = decode(msg);
    if (packet.op === 'malformed') stats.ignore('malformed');
    else t.receive(packet);
  });
  // An ICMP "port unreachable" for our DATA: the client's TID is closed, it has gone.
  socket.removeAllListeners('error');
  socket.on('error', () => t.receive({ op: 'error', code: 0, message: 'port unreachable (ICMP)' }));

  ctx.running.add(t);
  try {
    const end = await t.start();
    release();
    socket.close();
    // A read ahead may still be in the thread pool: the descriptor's number must not be reused
    // under it.
    await source.settle();
    await closeQuietly(file.fd);
    recordEnd(ctx, live, request, params.blksize, params.windowsize, end);
  } finally {
    ctx.running.delete(t);
  }
}

function recordEnd(ctx: Ctx, live: ActiveTransfer, request: Request, blksize: number, windowsize: number, end: TransferEnd): void {
  const { outcome, retransmits } = end;
  ctx.stats.finished(outcome, live.bytesSent, retransmits);
  const finished = ctx.transfers.end(live, outcome, { detail: `blksize ${blksize}, window ${windowsize}` });
  ctx.logger.access({
    protocol: 'tftp',
    time: finished.finishedAt,
    client: finished.client,
    path: request.file,
    mode: request.mode,
    bytesSent: finished.bytesSent,
    bytesDue: finished.bytesDue,
    blksize,
    windowsize,
    retransmits,
    durationMs: finished.durationMs,
    outcome,
    ...(end.clientError === undefined ? {} : { error: end.clientError }),
  });
}

/** A request answered with an ERROR: one access-log line, so the operator sees why. */
function logRefusal(ctx: Ctx, client: string, request: Request, error: string): void {
  ctx.logger.access({
    protocol: 'tftp',
    time: new Date().toISOString(),
    client,
    path: request.file,
    mode: request.mode,
    bytesSent: 0,
    bytesDue: 0,
    blksize: 0,
    windowsize: 0,
    retransmits: 0,
    durationMs: 0,
    outcome: 'refused',
    error,
  });
}

function connect(socket: Socket, to: RemoteInfo): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(to.port, to.address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function reply(socket: Socket, packet: Buffer, to: RemoteInfo): void {
  try {
    socket.send(packet, to.port, to.address, () => {});
  } catch {
    // closed while shutting down
  }
}
