// multipart/byteranges framing (RFC 9110 §14.6): ranges in, body parts and exact length out.
import { randomBytes } from 'node:crypto';
import type { ByteRange } from './range.js';
import type { BodyPart } from './transfer.js';

export interface MultipartBody {
  contentType: string;
  parts: BodyPart[];
  length: number;
}

export function multipartBody(ranges: ByteRange[], size: number, type: string, boundary = randomBytes(12).toString('hex')): MultipartBody {
  const parts: BodyPart[] = [];
  let length = 0;
  ranges.forEach((r, i) => {
    const head = Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${type}\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`,
      'latin1',
    );
    parts.push(head, r);
    length += head.length + r.end - r.start + 1;
  });
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  parts.push(tail);
  length += tail.length;
  return { contentType: `multipart/byteranges; boundary=${boundary}`, parts, length };
}
