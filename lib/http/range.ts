// Range header parsing (RFC 9110 §14.1.2, §14.2): header and file size in, decision out.

/** An inclusive byte range within a file: bytes start..end. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeDecision =
  | { kind: 'full' } // no usable Range header: send the whole file with 200
  | { kind: 'partial'; ranges: ByteRange[] } // 206, one range or multipart/byteranges
  | { kind: 'unsatisfiable' }; // 416

/** Beyond this many ranges (after coalescing) a multipart response is not worth it. */
export const MAX_RANGES = 16;

const FULL: RangeDecision = { kind: 'full' };
const DIGITS = /^\d+$/;

/**
 * Decide what a Range header asks of a file of `size` bytes.
 * A header we do not understand is ignored (200), as RFC 9110 allows; ranges that would cost
 * more than one full transfer (too many, or overlapping to more than the file) are ignored too,
 * so a hostile header ("Apache Killer", CVE-2011-3192) never amplifies the work.
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return FULL;
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return FULL;

  const satisfiable: ByteRange[] = [];
  let requested = 0;
  for (const raw of header.slice(eq + 1).split(',')) {
    const spec = raw.trim();
    if (spec === '') continue; // RFC list syntax tolerates empty elements
    const dash = spec.indexOf('-');
    if (dash < 0) return FULL;
    const first = spec.slice(0, dash).trim();
    const last = spec.slice(dash + 1).trim();
    let range: ByteRange | null;
    if (first === '') {
      if (!DIGITS.test(last)) return FULL;
      const suffix = Number(last);
      range = suffix > 0 && size > 0 ? { start: Math.max(0, size - suffix), end: size - 1 } : null;
    } else {
      if (!DIGITS.test(first) || (last !== '' && !DIGITS.test(last))) return FULL;
      const start = Number(first);
      const end = last === '' ? Infinity : Number(last);
      if (end < start) return FULL; // syntactically invalid: the whole header is ignored
      range = start < size ? { start, end: Math.min(end, size - 1) } : null;
    }
    if (range) {
      satisfiable.push(range);
      requested += range.end - range.start + 1;
    }
  }
  if (satisfiable.length === 0) return header.slice(eq + 1).trim() === '' ? FULL : { kind: 'unsatisfiable' };
  if (requested > size && satisfiable.length > 1) return FULL;
  const ranges = coalesce(satisfiable);
  if (ranges.length > MAX_RANGES) return FULL;
  return { kind: 'partial', ranges };
}

/** Merge overlapping and adjacent ranges, in ascending order. */
export function coalesce(ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const merged: ByteRange[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else merged.push({ ...r });
  }
  return merged;
}
