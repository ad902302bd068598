// DHCP/BOOTP wire format, both ways, and nothing else: bytes in, a typed packet (or the reason
// it is malformed) out; a typed packet in, bytes (bounded in size) out. No sockets, no policy.
// Layout: RFC 2131 §2 (fixed 236-byte BOOTP header), RFC 2132 (magic cookie and options).

/** The fixed BOOTP header, before the magic cookie. */
const HEADER_BYTES = 236;
const MAGIC_COOKIE = 0x63825363;
const OPTIONS_START = HEADER_BYTES + 4;
const SNAME_OFFSET = 44;
const SNAME_BYTES = 64;
const FILE_OFFSET = 108;
const FILE_BYTES = 128;

/** Largest reply we ever build: edk2 drops offers beyond 1472 bytes (1500 MTU - IP - UDP). */
export const MAX_REPLY_BYTES = 1472;
/** RFC 1542 §3.3: some relays and ROMs drop BOOTP messages shorter than 300 bytes. */
const MIN_REPLY_BYTES = 300;

export const OP_REQUEST = 1;
export const OP_REPLY = 2;

/** Option codes used by the proxy (RFC 2132, RFC 4578, iPXE's 175). */
export const Opt = {
  pad: 0,
  vendorSpecific: 43,
  overload: 52,
  messageType: 53,
  serverId: 54,
  maxMessageSize: 57,
  vendorClass: 60,
  bootFile: 67,
  userClass: 77,
  clientArch: 93,
  clientNdi: 94,
  clientGuid: 97,
  ipxeEncap: 175,
  end: 255,
} as const;

/** Option 53 values (RFC 2132 §9.6). */
export const MessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;

export interface DhcpPacket {
  op: number;
  htype: number;
  /** Hardware address length: how much of `chaddr` is the address (≤ 16). */
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of the field, as sent. */
  chaddr: Buffer;
  /** Server host name (NUL-terminated text in a 64-byte field). */
  sname: string;
  /** Boot file name (NUL-terminated text in a 128-byte field). */
  file: string;
  /** Options by code, repeated instances concatenated (RFC 3396); pad and end are not kept. */
  options: Map<number, Buffer>;
}

export type DecodeResult = { kind: 'packet'; packet: DhcpPacket } | { kind: 'malformed'; reason: string };

export type EncodeResult = { kind: 'bytes'; bytes: Buffer } | { kind: 'too-large'; reason: string };

function ipv4At(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** A NUL-terminated field as text (latin1: every byte stays one character, nothing throws). */
function textField(buf: Buffer, offset: number, size: number): string {
  const field = buf.subarray(offset, offset + size);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? size : nul).toString('latin1');
}

/**
 * Parse one datagram. Never throws: anything that is not a well-formed DHCP message comes back
 * as `malformed` with a short reason for the log. Option 52 (overload: options in sname/file) is
 * not followed; PXE clients do not use it, and those fields are kept as text.
 */
export function decodePacket(buf: Buffer): DecodeResult {
  const malformed = (reason: string): DecodeResult => ({ kind: 'malformed', reason });
  if (buf.length < OPTIONS_START) return malformed(`truncated: ${buf.length} bytes, a DHCP message has at least ${OPTIONS_START}`);
  if (buf.readUInt32BE(HEADER_BYTES) !== MAGIC_COOKIE) return malformed('no DHCP magic cookie (plain BOOTP or not DHCP)');
  const hlen = buf[2] as number;
  if (hlen > 16) return malformed(`hlen ${hlen} exceeds the 16-byte chaddr field`);

  // A missing END is tolerated when the options stop exactly at the end of the datagram.
  const options = new Map<number, Buffer>();
  let at = OPTIONS_START;
  while (at < buf.length) {
    const code = buf[at] as number;
    if (code === Opt.pad) {
      at += 1;
      continue;
    }
    if (code === Opt.end) break;
    if (at + 1 >= buf.length) return malformed(`option ${code} has no length byte`);
    const len = buf[at + 1] as number;
    const start = at + 2;
    if (start + len > buf.length) return malformed(`option ${code} claims ${len} bytes, only ${buf.length - start} left`);
    const value = buf.subarray(start, start + len);
    const previous = options.get(code);
    options.set(code, previous ? Buffer.concat([previous, value]) : Buffer.from(value));
    at = start + len;
  }
  const maxSize = options.get(Opt.maxMessageSize);
  if (maxSize !== undefined) {
    if (maxSize.length !== 2) return malformed(`option 57 has length ${maxSize.length}, expected 2`);
    if (maxSize.readUInt16BE(0) < 576) return malformed(`option 57 says ${maxSize.readUInt16BE(0)} bytes, below the minimum of 576`);
  }

  return {
    kind: 'packet',
    packet: {
      op: buf[0] as number,
      htype: buf[1] as number,
      hlen,
      hops: buf[3] as number,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: ipv4At(buf, 12),
      yiaddr: ipv4At(buf, 16),
      siaddr: ipv4At(buf, 20),
      giaddr: ipv4At(buf, 24),
      chaddr: Buffer.from(buf.subarray(28, 44)),
      sname: textField(buf, SNAME_OFFSET, SNAME_BYTES),
      file: textField(buf, FILE_OFFSET, FILE_BYTES),
      options,
    },
  };
}

/** Write a dotted quad; anything else is a programming error in the caller. */
function writeIpv4(buf: Buffer, offset: number, address: string): void {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`not an IPv4 address: ${address}`);
  }
  parts.forEach((p, i) => buf.writeUInt8(p, offset + i));
}

/**
 * Build a message. Options are written in the map's order, each at most 255 bytes (longer values
 * are refused, not split), then END, then zero padding to 300 bytes. A message that would exceed
 * 1472 bytes, or a `file`/`sname` too long for its NUL-terminated field, is refused as too-large.
 */
export function encodePacket(p: DhcpPacket): EncodeResult {
  const tooLarge = (reason: string): EncodeResult => ({ kind: 'too-large', reason });
  const file = Buffer.from(p.file, 'latin1');
  const sname = Buffer.from(p.sname, 'latin1');
  if (file.length >= FILE_BYTES)
    return tooLarge(`boot file name of ${file.length} bytes does not fit the ${FILE_BYTES - 1}-byte file field`);
  if (sname.length >= SNAME_BYTES)
    return tooLarge(`server name of ${sname.length} bytes does not fit the ${SNAME_BYTES - 1}-byte sname field`);
  let optionBytes = 1; // END
  for (const [code, value] of p.options) {
    if (value.length > 255) return tooLarge(`option ${code} is ${value.length} bytes, at most 255 fit`);
    optionBytes += 2 + value.length;
  }
  const size = Math.max(MIN_REPLY_BYTES, OPTIONS_START + optionBytes);
  if (size > MAX_REPLY_BYTES) return tooLarge(`message of ${size} bytes exceeds ${MAX_REPLY_BYTES}`);

  const buf = Buffer.alloc(size);
  buf.writeUInt8(p.op, 0);
  buf.writeUInt8(p.htype, 1);
  buf.writeUInt8(p.hlen, 2);
  buf.writeUInt8(p.hops, 3);
  buf.writeUInt32BE(p.xid >>> 0, 4);
  buf.writeUInt16BE(p.secs, 8);
  buf.writeUInt16BE(p.flags, 10);
  writeIpv4(buf, 12, p.ciaddr);
  writeIpv4(buf, 16, p.yiaddr);
  writeIpv4(buf, 20, p.siaddr);
  writeIpv4(buf, 24, p.giaddr);
  p.chaddr.copy(buf, 28, 0, Math.min(16, p.chaddr.length));
  sname.copy(buf, SNAME_OFFSET);
  file.copy(buf, FILE_OFFSET);
  buf.writeUInt32BE(MAGIC_COOKIE, HEADER_BYTES);
  let at = OPTIONS_START;
  for (const [code, value] of p.options) {
    buf.writeUInt8(code, at);
    buf.writeUInt8(value.length, at + 1);
    value.copy(buf, at + 2);
    at += 2 + value.length;
  }
  buf.writeUInt8(Opt.end, at);
  return { kind: 'bytes', bytes: buf };
}

/** "52:54:00:12:34:56": the first hlen bytes of chaddr. */
export function macOf(p: DhcpPacket): string {
  return [...p.chaddr.subarray(0, p.hlen)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
