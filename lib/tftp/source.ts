// Where a TFTP transfer's bytes come from: the one descriptor opened for the request (so a file
// renamed over mid-transfer is still read whole), in octet mode as it is, in netascii mode with
// line ends translated.
//
// A block is 512 or 1468 bytes: a read per block would be a thread-pool hand-off per packet. So
// the file is read a chunk at a time (a window or 32 KiB, whichever is larger), one chunk ahead
// of what is sent, and each DATA packet is cut from the chunks by copying (a packet is sent and
// resent from its own buffer, so chunks can be reused at once).
import { read } from 'node:fs';
import { promisify } from 'node:util';

const readAsync = promisify(read);

/** Reads the transfer's next bytes into `into` (or a buffer of its own); empty at the end. */
export type ChunkReader = (into: Buffer) => Promise<Buffer>;

/** The file ended early: a short transfer would be silently wrong. */
export class FileShrankError extends Error {
  constructor() {
    super('file shrank while being sent');
  }
}

/** The file as it is: exactly `size` bytes (its size at open; growth after that is not sent). */
export function octetReader(fd: number, size: number): ChunkReader {
  let position = 0;
  return async (into) => {
    const want = Math.min(into.length, size - position);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await readAsync(fd, into, got, want - got, position + got);
      if (bytesRead === 0) throw new FileShrankError();
      got += bytesRead;
    }
    position += got;
    return into.subarray(0, got);
  };
}

/**
 * Netascii (RFC 1350, after RFC 764): LF goes out as CR LF and a bare CR as CR NUL. The size on
 * the wire is only known at the end, so tsize is not offered in this mode.
 */
export function netasciiReader(fd: number, size: number): ChunkReader {
  const raw = octetReader(fd, size);
  return async (into) => toNetascii(await raw(into));
}

/** Bytes in memory, for tests; `shrinkAt` fails like a file cut short there. */
export function memoryReader(bytes: Buffer, shrinkAt = Infinity): ChunkReader {
  let position = 0;
  return async (into) => {
    if (position >= shrinkAt) throw new FileShrankError();
    const n = bytes.copy(into, 0, position, Math.min(bytes.length, shrinkAt, position + into.length));
    position += n;
    return into.subarray(0, n);
  };
}

const MIN_CHUNK = 32 * 1024;

/** DATA packets, one block at a time, cut from chunks read one ahead. */
export class BlockSource {
  /** Unsent bytes, in order, each with the buffer it was read into. */
  private readonly queue: { data: Buffer; owner: Buffer }[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private reading: Promise<void> | undefined;
  private readonly spare: Buffer[] = [];
  private readonly chunkBytes: number;

  constructor(
    private readonly read: ChunkReader,
    private readonly blksize: number,
    windowBytes: number,
  ) {
    this.chunkBytes = Math.max(MIN_CHUNK, windowBytes);
    this.prefetch();
  }

  /**
   * The next block as a DATA packet with its 4 header bytes still to be written, or null when
   * its bytes are not read yet (await more()). A packet shorter than blksize + 4 is the last.
   */
  next(): Buffer | null {
    if (this.queued < this.blksize && !this.ended) {
      this.prefetch();
      return null;
    }
    const packet = Buffer.allocUnsafe(4 + Math.min(this.blksize, this.queued));
    let at = 4;
    while (at < packet.length) {
      const head = this.queue[0] as { data: Buffer; owner: Buffer };
      const n = head.data.copy(packet, at);
      at += n;
      if (n === head.data.length) {
        this.queue.shift();
        if (this.spare.length < 2) this.spare.push(head.owner);
      } else head.data = head.data.subarray(n);
    }
    this.queued -= packet.length - 4;
    this.prefetch();
    return packet;
  }

  /** Resolves once next() has something (a block, or the end); rejects if the read failed. */
  async more(): Promise<void> {
    while (this.queued < this.blksize && !this.ended) {
      if (this.failure) throw this.failure;
      this.prefetch();
      await this.reading;
    }
  }

  /** Resolves once no read is in flight: the descriptor may then be closed (its number reused). */
  async settle(): Promise<void> {
    await this.reading;
  }

  /** Keep one chunk read ahead of what is sent. */
  private prefetch(): void {
    if (this.reading || this.ended || this.failure || this.queued >= this.chunkBytes) return;
    const into = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
    this.reading = this.read(into).then(
      (data) => {
        this.reading = undefined;
        if (data.length === 0) this.ended = true;
        else {
          this.queue.push({ data, owner: into });
          this.queued += data.length;
        }
      },
      (err: unknown) => {
        this.reading = undefined;
        this.failure = err instanceof Error ? err : new Error(String(err));
      },
    );
  }
}

const CR = 0x0d;
const LF = 0x0a;

export function toNetascii(bytes: Buffer): Buffer {
  let extra = 0;
  for (const b of bytes) if (b === CR || b === LF) extra++;
  if (extra === 0) return bytes;
  const out = Buffer.allocUnsafe(bytes.length + extra);
  let at = 0;
  for (const b of bytes) {
    if (b === LF) {
      out[at++] = CR;
      out[at++] = LF;
    } else if (b === CR) {
      out[at++] = CR;
      out[at++] = 0;
    } else out[at++] = b;
  }
  return out;
}
