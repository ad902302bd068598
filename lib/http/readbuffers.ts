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
// That the stream pushes our buffer is a Node internal, checked on every read (internals.ts).
import { read } from 'node:fs';
import { FilledBuffers } from './internals.js';

type ReadDone = (err: NodeJS.ErrnoException | null, bytesRead: number, buffer: Buffer) => void;

/** Reads outside these sizes use the stream's own buffer. */
const MIN_RECYCLED = 16 * 1024;
const MAX_RECYCLED = 1024 * 1024;
/** Idle bytes kept for reuse, over all sizes; more goes back to the allocator. */
const MAX_IDLE_BYTES = 8 * 1024 * 1024;

const NO_BUFFER = Buffer.alloc(0);

/** The size class of a read: the next power of two. */
const classOf = (length: number) => 2 ** Math.ceil(Math.log2(length));

export class BufferPool {
  private readonly idle = new Map<number, ArrayBuffer[]>();
  private idleBytes = 0;
  /** Ours, and handed out: only these may come back (a small Buffer may share Node's slab). */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private readonly filled = new FilledBuffers();

  /**
   * fs.read as a ReadStream calls it (through its `fs` option), reading into a recycled buffer
   * of the same size instead of the one the stream allocated. The stream pushes whatever buffer
   * the callback names, so the bytes reach the loop without a copy.
   */
  readonly read = (fd: number, buffer: Buffer, offset: number, length: number, position: number | null, done: ReadDone): void => {
    if (this.filled.broken || length < MIN_RECYCLED || length > MAX_RECYCLED || offset !== 0)
      return void read(fd, buffer, offset, length, position, done);
    const target = Buffer.from(this.take(classOf(length)), 0, length);
    read(fd, target, 0, length, position, (err, bytesRead) => {
      if (err || bytesRead === 0) this.recycle(target);
      // A short read (the file shrank) is returned as a view of exactly what was read: the
      // stream would otherwise copy it.
      done(err, bytesRead, this.filled.mark(bytesRead === length ? target : target.subarray(0, bytesRead)));
    });
  };

  /**
   * Whether a chunk a stream reading through `read` pushed holds what was read: false if the
   * stream pushed a buffer of its own (see internals.ts), after which reads are plain.
   */
  verify(chunk: Buffer): boolean {
    if (this.filled.broken || chunk.length < MIN_RECYCLED || chunk.length > MAX_RECYCLED) return true; // a plain read
    return this.filled.pushed(chunk);
  }

  /** Give back a chunk that `read` produced, once nothing uses its bytes any more. */
  recycle(chunk: Buffer): void {
    const memory = chunk.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.lent.has(memory)) return;
    this.lent.delete(memory);
    const size = memory.byteLength;
    if (this.idleBytes + size > MAX_IDLE_BYTES) return;
    let list = this.idle.get(size);
    if (!list) this.idle.set(size, (list = []));
    list.push(memory);
    this.idleBytes += size;
  }

  /** `length` bytes at `position`, read into a recycled buffer (a fresh one outside the pool's sizes). */
  readAt(fd: number, length: number, position: number): Promise<Buffer> {
    // In the pool's sizes `read` ignores the buffer it is given: give it none to fill.
    const given = this.filled.broken || length < MIN_RECYCLED || length > MAX_RECYCLED ? Buffer.allocUnsafe(length) : NO_BUFFER;
    return new Promise((resolve, reject) => {
      this.read(fd, given, 0, length, position, (err, bytesRead, buffer) => (err ? reject(err) : resolve(buffer.subarray(0, bytesRead))));
    });
  }

  private take(size: number): ArrayBuffer {
    const memory = this.idle.get(size)?.pop();
    if (memory) this.idleBytes -= size;
    const out = memory ?? new ArrayBuffer(size);
    this.lent.add(out);
    return out;
  }
}
