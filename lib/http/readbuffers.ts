// Recycled read buffers for the transfer loop's read streams.
//
// A ReadStream reads into a fresh buffer every time. Fresh memory is dear at streaming speed:
// the kernel faults in and zeroes each page before the read copies into it, and the garbage
// collector then frees it again; on the project's machines that cost about as much as the copy
// itself. So our streams read into buffers that come back here once the socket has taken their
// bytes, and the next read, of this transfer or another, reuses them while they are still mapped.
// (The stream still allocates its own buffer for each read, but never touches it: no faults.)
// Buffers come in powers of two from 16 KiB to 1 MiB, so odd sizes (the last read of a file, a
// small range) share the classes of the usual reads instead of filling the pool with strays.
import { read } from 'node:fs';

type ReadDone = (err: NodeJS.ErrnoException | null, bytesRead: number, buffer: Buffer) => void;

/** Reads outside these sizes use the stream's own buffer. */
const MIN_RECYCLED = 16 * 1024;
const MAX_RECYCLED = 1024 * 1024;
/** Idle bytes kept for reuse, over all sizes; more goes back to the allocator. */
const MAX_IDLE_BYTES = 8 * 1024 * 1024;

const idle = new Map<number, ArrayBuffer[]>();
let idleBytes = 0;
/** Ours, and handed out: only these may come back (a small Buffer may share Node's slab). */
const lent = new WeakSet<ArrayBuffer>();

/** The size class of a read: the next power of two. */
const classOf = (length: number) => 2 ** Math.ceil(Math.log2(length));

function take(size: number): ArrayBuffer {
  const memory = idle.get(size)?.pop();
  if (memory) idleBytes -= size;
  const out = memory ?? new ArrayBuffer(size);
  lent.add(out);
  return out;
}

/**
 * fs.read as a ReadStream calls it (through its `fs` option), reading into a recycled buffer of
 * the same size instead of the one the stream allocated. The stream pushes whatever buffer the
 * callback names, so the bytes reach the loop without a copy.
 */
export function recyclingRead(fd: number, buffer: Buffer, offset: number, length: number, position: number | null, done: ReadDone): void {
  if (length < MIN_RECYCLED || length > MAX_RECYCLED || offset !== 0) return void read(fd, buffer, offset, length, position, done);
  const target = Buffer.from(take(classOf(length)), 0, length);
  read(fd, target, 0, length, position, (err, bytesRead) => {
    if (err || bytesRead === 0) recycle(target);
    // A short read (the file shrank) is returned as a view of exactly what was read: the
    // stream would otherwise copy it.
    done(err, bytesRead, bytesRead === length ? target : target.subarray(0, bytesRead));
  });
}

/** Give back a chunk that recyclingRead produced, once nothing uses its bytes any more. */
export function recycle(chunk: Buffer): void {
  const memory = chunk.buffer;
  if (!(memory instanceof ArrayBuffer) || !lent.has(memory)) return;
  lent.delete(memory);
  const size = memory.byteLength;
  if (idleBytes + size > MAX_IDLE_BYTES) return;
  let list = idle.get(size);
  if (!list) idle.set(size, (list = []));
  list.push(memory);
  idleBytes += size;
}
