// Conditional requests (RFC 9110 §13): request headers and the file's validators in, decision out.
import type { Stats } from 'node:fs';

/** What identifies one version of a file. */
export interface Validators {
  /** Strong entity tag, quotes included. */
  etag: string;
  /** Modification time in whole seconds (ms since epoch), as HTTP dates carry it. */
  lastModified: number;
}

export type Precondition = 'proceed' | 'not-modified' | 'precondition-failed';

export interface ConditionalHeaders {
  'if-match'?: string | undefined;
  'if-none-match'?: string | undefined;
  'if-modified-since'?: string | undefined;
  'if-unmodified-since'?: string | undefined;
  'if-range'?: string | undefined;
}

/**
 * Validators from an fstat of the open descriptor: size and mtime to the microsecond. No inode,
 * so that copies of an artifact on several hosts behind one cache share their ETag.
 */
export function validatorsOf(stats: Stats): Validators {
  const mtimeMs = Math.trunc(stats.mtimeMs);
  const tag = `${stats.size.toString(36)}-${Math.trunc(stats.mtimeMs * 1000).toString(36)}`;
  return { etag: `"${tag}"`, lastModified: mtimeMs - (mtimeMs % 1000) };
}

/** Evaluate preconditions in the order RFC 9110 §13.2.2 prescribes, for GET and HEAD. */
export function evaluatePreconditions(headers: ConditionalHeaders, v: Validators): Precondition {
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!matchesAny(ifMatch, v.etag, true)) return 'precondition-failed';
  } else {
    const since = parseHttpDate(headers['if-unmodified-since']);
    if (since !== undefined && v.lastModified > since) return 'precondition-failed';
  }
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (matchesAny(ifNoneMatch, v.etag, false)) return 'not-modified';
  } else {
    const since = parseHttpDate(headers['if-modified-since']);
    if (since !== undefined && v.lastModified <= since) return 'not-modified';
  }
  return 'proceed';
}

/**
 * Whether a Range may be honoured under If-Range (RFC 9110 §13.1.5): only when the validator
 * is a strong ETag that matches, or a date that is exactly the Last-Modified date.
 */
export function ifRangeAllows(header: string | undefined, v: Validators): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"')) return value === v.etag;
  if (value.startsWith('W/')) return false;
  return parseHttpDate(value) === v.lastModified;
}

/** Match a list of entity tags ("*" or comma-separated) against ours; weak comparison ignores W/. */
function matchesAny(list: string, etag: string, strong: boolean): boolean {
  if (list.trim() === '*') return true;
  for (const raw of list.split(',')) {
    let tag = raw.trim();
    if (tag.startsWith('W/')) {
      if (strong) continue;
      tag = tag.slice(2);
    }
    if (tag === etag) return true;
  }
  return false;
}

/** Parse an HTTP date; undefined when absent or invalid (an invalid date is ignored). */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
