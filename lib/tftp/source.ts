// Where a TFTP transfer's bytes come from: the one descriptor opened for the request (so a file
// renamed over mid-transfer is still read whole), in octet mode as it is, in netascii mode with
// line ends translated. Reads are asynchronous and go straight into the packets' data areas.
import { read, readv } from 'node:fs';
import { promisify } from 'node:util';

const readvAsync = promisify(readv);
const readAsync = promisify(read);

export interface BlockSource {
  /**
   * Fill `views` in order with the next bytes of the transfer; resolves with how many were
   * written, fewer than they hold only at the end. Rejects with FileShrankError when the file
   * ends before the size it had when it was opened.
   */
  fill(views: Buffer[]): Promise<number>;
}

/** The file ended early: a short transfer would be silently wrong. */
export class FileShrankError extends Error {
  constructor() {
    super('file shrank while being sent');
  }
}

const total = (views: Buffer[]) => views.reduce((n, v) => n + v.length, 0);

/** `views` with the first `skip` bytes left out and cut to `length` bytes in all. */
function window(views: Buffer[], skip: number, length: number): Buffer[] {
  const out: Buffer[] = [];
  for (const v of views) {
    if (length <= 0) break;
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    const part = v.subarray(skip, skip + length);
    out.push(part);
    length -= part.length;
    skip = 0;
  }
  return out;
}

/** The file as it is: exactly `size` bytes (its size at open; growth after that is not sent). */
export function octetSource(fd: number, size: number): BlockSource {
  let position = 0;
  return {
    async fill(views) {
      const want = Math.min(total(views), size - position);
      let got = 0;
      while (got < want) {
        // One readv per window: a single hand-off to the thread pool fills every block.
        const { bytesRead } = await readvAsync(fd, window(views, got, want - got), position + got);
        if (bytesRead === 0) throw new FileShrankError();
        got += bytesRead;
      }
      position += got;
      return got;
    },
  };
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Netascii (RFC 1350, after RFC 764): LF goes out as CR LF and a bare CR as CR NUL. The size on
 * the wire is only known at the end, so tsize is not offered in this mode.
 */
export function netasciiSource(fd: number, size: number): BlockSource {
  let position = 0;
  let pending: Buffer = Buffer.alloc(0);
  const raw = Buffer.allocUnsafe(16 * 1024);
  return {
    async fill(views) {
      const want = total(views);
      while (pending.length < want && position < size) {
        const { bytesRead } = await readAsync(fd, raw, 0, Math.min(raw.length, size - position), position);
        if (bytesRead === 0) throw new FileShrankError();
        position += bytesRead;
        pending = Buffer.concat([pending, toNetascii(raw.subarray(0, bytesRead))]);
      }
      let got = 0;
      for (const v of views) {
        const n = pending.copy(v, 0, got);
        got += n;
        if (n < v.length) break;
      }
      pending = pending.subarray(got);
      return got;
    },
  };
}

export function toNetascii(bytes: Buffer): Buffer {
  let extra = 0;
  for (const b of bytes) if (b === CR || b === LF) extra++;
  if (extra === 0) return Buffer.from(bytes);
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
