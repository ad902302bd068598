// TFTP packets, bytes <-> typed values (RFC 1350; options RFC 2347). Pure: no sockets, no files.
//
//   RRQ/WRQ  00 01|02  file 00  mode 00  [name 00 value 00]...
//   DATA     00 03     block(2)  data(0..blksize)
//   ACK      00 04     block(2)
//   ERROR    00 05     code(2)   message 00
//   OACK     00 06     [name 00 value 00]...

export type Request = {
  op: 'rrq' | 'wrq';
  file: string;
  /** Lower-cased: mode names are case-insensitive. */
  mode: string;
  /** Option names lower-cased (case-insensitive), values as sent; the first of a repeated name wins. */
  options: Map<string, string>;
};

export type Packet =
  | Request
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: Map<string, string> };

/** Why a datagram is not a TFTP packet we can read: counted, answered with ERROR 4 or not at all. */
export type Malformed = { op: 'malformed'; reason: string };

export const ErrorCode = {
  undefined: 0,
  notFound: 1,
  accessViolation: 2,
  illegalOperation: 4,
  unknownTid: 5,
  optionsRefused: 8,
} as const;

const OPCODES = ['rrq', 'wrq', 'data', 'ack', 'error', 'oack'] as const;

/** Read one datagram. Never throws: anything we cannot read is `malformed` with a reason. */
export function decode(buf: Buffer): Packet | Malformed {
  if (buf.length < 2) return malformed('shorter than an opcode');
  const op = OPCODES[buf.readUInt16BE(0) - 1];
  switch (op) {
    case undefined:
      return malformed(`unknown opcode ${buf.readUInt16BE(0)}`);
    case 'rrq':
    case 'wrq': {
      const fields = strings(buf, 2);
      if (fields === undefined) return malformed('request without its terminating NUL');
      const [file, mode, ...rest] = fields;
      if (file === undefined || file === '') return malformed('request without a file name');
      if (mode === undefined) return malformed('request without a mode');
      return { op, file, mode: mode.toLowerCase(), options: optionMap(rest) };
    }
    case 'data':
      if (buf.length < 4) return malformed('DATA shorter than its header');
      return { op, block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case 'ack':
      if (buf.length < 4) return malformed('ACK shorter than its header');
      return { op, block: buf.readUInt16BE(2) };
    case 'error': {
      if (buf.length < 4) return malformed('ERROR shorter than its header');
      // Some clients leave out the message's NUL: take what is there.
      const end = buf.indexOf(0, 4);
      return { op, code: buf.readUInt16BE(2), message: buf.toString('utf8', 4, end < 0 ? buf.length : end) };
    }
    case 'oack': {
      const fields = strings(buf, 2);
      if (fields === undefined) return malformed('OACK without its terminating NUL');
      return { op, options: optionMap(fields) };
    }
  }
}

/** NUL-terminated strings from `offset` to the end; undefined if the last one is unterminated. */
function strings(buf: Buffer, offset: number): string[] | undefined {
  const out: string[] = [];
  let at = offset;
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end < 0) return undefined;
    out.push(buf.toString('utf8', at, end));
    at = end + 1;
  }
  return out;
}

/** Name/value pairs; a name without a value (a truncated request) is dropped, not fatal. */
function optionMap(fields: string[]): Map<string, string> {
  const options = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = (fields[i] as string).toLowerCase();
    if (!options.has(name)) options.set(name, fields[i + 1] as string);
  }
  return options;
}

const malformed = (reason: string): Malformed => ({ op: 'malformed', reason });

/** The 4-byte header of DATA block `block` (mod 65536), written into `packet`. */
export function writeDataHeader(packet: Buffer, block: number): void {
  packet.writeUInt16BE(3, 0);
  packet.writeUInt16BE(block & 0xffff, 2);
}

export function encodeData(block: number, data: Buffer): Buffer {
  const packet = Buffer.allocUnsafe(4 + data.length);
  writeDataHeader(packet, block);
  data.copy(packet, 4);
  return packet;
}

export function encodeAck(block: number): Buffer {
  const packet = Buffer.alloc(4);
  packet.writeUInt16BE(4, 0);
  packet.writeUInt16BE(block & 0xffff, 2);
  return packet;
}

export function encodeError(code: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const packet = Buffer.alloc(5 + text.length);
  packet.writeUInt16BE(5, 0);
  packet.writeUInt16BE(code, 2);
  text.copy(packet, 4);
  return packet;
}

export function encodeOack(options: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat([Buffer.from([0, 6]), ...options.flatMap(([name, value]) => [Buffer.from(`${name}\0${value}\0`, 'utf8')])]);
}

/** A read or write request (clients and tests). */
export function encodeRequest(op: 'rrq' | 'wrq', file: string, mode: string, options: Record<string, string | number> = {}): Buffer {
  const fields = [file, mode, ...Object.entries(options).flatMap(([n, v]) => [n, String(v)])];
  return Buffer.concat([Buffer.from([0, op === 'rrq' ? 1 : 2]), Buffer.from(fields.map((f) => f + '\0').join(''), 'utf8')]);
}
