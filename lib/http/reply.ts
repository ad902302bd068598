// What a response will be, decided before a byte of it is sent, and the helpers that build the
// generated ones (errors, admin pages, the boot menu).
import type { OutgoingHttpHeaders } from 'node:http';
import type { BodyPart, FileLease } from './transfer.js';

export interface Reply {
  status: number;
  headers: OutgoingHttpHeaders;
  /** The body GET would get; HEAD gets the same headers and none of it. */
  parts: BodyPart[];
  /** The open file the parts' ranges refer to; the transfer releases it. */
  file?: FileLease;
  /** A recycled read buffer in the parts (readbuffers.ts): back to the pool once it is sent. */
  scratch?: Buffer;
  /** "bytes a-b/size" when partial, for the status page. */
  range?: string;
  /** Admin pages: counted, but neither logged nor listed among recent transfers. */
  internal?: boolean;
}

/**
 * Seconds a client is asked to wait before it tries again: every 503 carries it, since iPXE
 * honours Retry-After on a 5xx and then tries again instead of failing the boot.
 */
export const RETRY_AFTER_SECONDS = 5;

export function bodyReply(status: number, body: string, type: string, extra: OutgoingHttpHeaders = {}): Reply {
  const bytes = Buffer.from(body);
  // Written out, extras added after: V8 (Node 20) builds `{ ...extra, more }` slowly.
  const headers: OutgoingHttpHeaders = { 'Content-Type': type, 'Content-Length': bytes.length, 'Cache-Control': 'no-cache' };
  for (const name in extra) headers[name] = extra[name];
  return { status, headers, parts: [bytes] };
}

/** A short text answer; errors get "404 Not Found" as their body. */
export function textReply(status: number, message: string, extra: OutgoingHttpHeaders = {}, kind: 'error' | 'generated' = 'error'): Reply {
  const body = kind === 'error' ? `${status} ${message}\n` : message;
  return bodyReply(status, body, 'text/plain; charset=utf-8', extra);
}

/** 503 with Retry-After: a pause for the client, not a failure. */
export const unavailable = () => textReply(503, 'Service Unavailable', { 'Retry-After': String(RETRY_AFTER_SECONDS) });

/** Text for an HTML page (listings, the admin page): every markup character as a reference. */
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
