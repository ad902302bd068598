// The Node internals bootserve leans on, all here, each with a check and a documented fallback.
// None is needed for correctness; each buys speed or precision, and the checks run on every
// Node version CI tests (20 and the current LTS).
//
// 1. Socket write accounting (`_bytesDispatched`, `_handle.writeQueueSize`): how many bytes the
//    kernel took, for the stall guard's reading of /proc/net/tcp (progress.ts). Checked per
//    socket; fallback: the guard goes by 'drain' events alone.
// 2. node:http's deadline checks (headersTimeout, requestTimeout) start when the server emits
//    'listening'. bootserve's HTTP server is a plain net.Server that admits connections and
//    hands them to node:http with the documented emit('connection', socket), so node:http never
//    listens itself: we emit 'listening' for it. Checked at start (node:http must have a
//    'listening' listener); fallback: an idle timeout of the header timeout on every socket.
// 3. ReadStream pushes the very buffer its `fs.read` callback names, which lets reads land in
//    recycled buffers (readbuffers.ts). Checked on every recycled read: a chunk that is not the
//    buffer we filled aborts its transfer and turns recycling off for good (plain reads).
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';

interface SocketInternals {
  _bytesDispatched?: unknown;
  _handle?: { writeQueueSize?: unknown } | null;
}

/**
 * Bytes the kernel has accepted from this socket so far; undefined if Node no longer says.
 * Bytes handed to libuv (`_bytesDispatched`, a getter for the handle's own count, the same in
 * Node 20, 22 and 24) minus the part libuv still holds because the kernel would not take it yet
 * (`writeQueueSize`). The public figures cannot stand in: `bytesWritten - writableLength` leaves
 * out the whole write in progress, also the part of it the kernel already took.
 */
export function kernelAccepted(socket: Socket): number | undefined {
  const s = socket as unknown as SocketInternals;
  const dispatched = s._bytesDispatched;
  const inLibuv = s._handle ? s._handle.writeQueueSize : 0; // no handle: nothing left to write
  if (typeof dispatched !== 'number' || typeof inLibuv !== 'number') return undefined;
  return dispatched - inLibuv;
}

/**
 * Start node:http's header and request deadlines on a server that is handed its connections.
 * Returns how they are enforced.
 */
export function startHttpDeadlines(server: HttpServer, headerTimeoutMs: number): 'node' | 'idle-timeout' {
  if (server.listenerCount('listening') > 0) {
    server.emit('listening');
    return 'node';
  }
  // A slowloris is then cut after headerTimeoutMs of silence instead of at the deadline.
  server.setTimeout(headerTimeoutMs, (socket: Socket) => socket.destroy());
  return 'idle-timeout';
}

/** Buffers handed to ReadStream through our read callback, to check what it pushes. */
export class FilledBuffers {
  private readonly filled = new WeakSet<Buffer>();
  /** Set once a stream pushed something else: recycling is off from then on. */
  broken = false;

  mark(buffer: Buffer): Buffer {
    this.filled.add(buffer);
    return buffer;
  }

  /** Whether `chunk`, pushed by a stream whose reads we fill, is a buffer we filled. */
  pushed(chunk: Buffer): boolean {
    if (this.filled.has(chunk)) return true;
    this.broken = true;
    return false;
  }
}
