// Option negotiation (RFC 2347-2349, 7440): the client's options + the file's size + our limits →
// the transfer's parameters and the OACK. Pure.
//
// Firmware is strict here (see docs/tftp.md): edk2 refuses an OACK that names an option it did not
// ask for or carries a larger blksize or windowsize or another timeout, and node-tftp and PyPXE
// broke UEFI boots by sending tsize unasked. So the OACK holds only what was asked and accepted,
// each at a value no larger than asked; an option we cannot honour is left out, never refused.

export interface Limits {
  /** --tftp-max-blksize: 1468 by default, so a block fits a 1500-byte Ethernet frame. */
  maxBlksize: number;
  /** The longest client timeout we can honour and still resend a few times before giving up. */
  maxTimeoutMs: number;
}

export interface Negotiated {
  /** Bytes per DATA block: 512 unless negotiated. */
  blksize: number;
  /** Blocks sent before waiting for an ACK: 1 unless negotiated. */
  windowsize: number;
  /** The client's retransmission timeout, when it asked for one and we echoed it. */
  timeoutMs: number | undefined;
  /** The OACK's options in the client's order; empty: no OACK, the transfer starts with DATA 1. */
  oack: [string, string][];
}

export const DEFAULT_BLKSIZE = 512;
/** RFC 2348's range. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** A window is held in memory until acknowledged: at most this many blocks, and at most
 * WINDOW_BYTES of them (so a large blksize gets a smaller window). */
export const MAX_WINDOWSIZE = 64;
export const WINDOW_BYTES = 1024 * 1024;

const integer = (text: string): number | undefined => (/^\d{1,10}$/.test(text) ? Number(text) : undefined);

/**
 * Decide the transfer's parameters. `size` is the exact number of bytes the transfer will send,
 * or undefined when it is not known in advance (netascii), in which case tsize is not offered.
 */
export function negotiate(requested: ReadonlyMap<string, string>, size: number | undefined, limits: Limits): Negotiated {
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;
  const accepted = new Map<string, string>();

  const asked = requested.get('blksize');
  const b = asked === undefined ? undefined : integer(asked);
  if (b !== undefined && b >= MIN_BLKSIZE) {
    blksize = Math.min(b, MAX_BLKSIZE, limits.maxBlksize);
    accepted.set('blksize', String(blksize));
  }
  const w = integer(requested.get('windowsize') ?? '');
  if (w !== undefined && w >= 1 && w <= 65535) {
    windowsize = Math.min(w, MAX_WINDOWSIZE, Math.max(1, Math.floor(WINDOW_BYTES / blksize)));
    accepted.set('windowsize', String(windowsize));
  }
  const t = requested.get('timeout');
  const seconds = t === undefined ? undefined : integer(t);
  // RFC 2349: 1-255 seconds, echoed exactly as sent; one so long that we would give up before a
  // second resend is left out instead (it is our resend interval once echoed).
  if (t !== undefined && seconds !== undefined && seconds >= 1 && seconds <= 255 && seconds * 1000 <= limits.maxTimeoutMs) {
    timeoutMs = seconds * 1000;
    accepted.set('timeout', t);
  }
  // tsize in a read request is the client asking for the size (it sends 0).
  if (size !== undefined && integer(requested.get('tsize') ?? '') !== undefined) accepted.set('tsize', String(size));

  const oack = [...requested.keys()]
    .filter((name) => accepted.has(name))
    .map((name): [string, string] => [name, accepted.get(name) as string]);
  return { blksize, windowsize, timeoutMs, oack };
}
