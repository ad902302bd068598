// The storm's own DHCP and TFTP codecs, client side. Written apart from lib/ on purpose: the
// simulator checks the server, so it must not share the server's codec (or its mistakes).

export const DHCP_MAGIC = 0x63825363;
export const OPT = {
  vendorSpecific: 43,
  messageType: 53,
  serverId: 54,
  vendorClass: 60,
  bootFile: 67,
  userClass: 77,
  arch: 93,
  nic: 94,
  guid: 97,
  ipxe: 175,
} as const;
export const MSG = { discover: 1, offer: 2, request: 3, ack: 5 } as const;

export interface DhcpRequest {
  xid: number;
  mac: Buffer;
  ciaddr: string;
  flags: number;
  options: [number, Buffer][];
}

export interface DhcpReply {
  op: number;
  xid: number;
  mac: string;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  file: string;
  options: Map<number, Buffer>;
}

const ipBytes = (a: string) => Buffer.from(a.split('.').map(Number));
const ipText = (b: Buffer, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
export const macText = (b: Buffer) => [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');

export function encodeDhcp(r: DhcpRequest): Buffer {
  const optionBytes = r.options.reduce((n, [, v]) => n + 2 + v.length, 0) + 1;
  const b = Buffer.alloc(Math.max(300, 240 + optionBytes));
  b[0] = 1; // BOOTREQUEST
  b[1] = 1; // Ethernet
  b[2] = 6;
  b.writeUInt32BE(r.xid >>> 0, 4);
  b.writeUInt16BE(r.flags, 10);
  ipBytes(r.ciaddr).copy(b, 12);
  r.mac.copy(b, 28);
  b.writeUInt32BE(DHCP_MAGIC, 236);
  let at = 240;
  for (const [code, value] of r.options) {
    b[at] = code;
    b[at + 1] = value.length;
    value.copy(b, at + 2);
    at += 2 + value.length;
  }
  b[at] = 255;
  return b;
}

export function decodeDhcp(b: Buffer): DhcpReply | undefined {
  if (b.length < 240 || b.readUInt32BE(236) !== DHCP_MAGIC) return undefined;
  const options = new Map<number, Buffer>();
  for (let at = 240; at < b.length; ) {
    const code = b[at] as number;
    if (code === 255) break;
    if (code === 0) {
      at++;
      continue;
    }
    const len = b[at + 1];
    if (len === undefined || at + 2 + len > b.length) return undefined;
    options.set(code, b.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  const fileEnd = b.indexOf(0, 108);
  const file = b.toString('latin1', 108, fileEnd < 0 || fileEnd > 236 ? 236 : fileEnd);
  return {
    op: b[0] as number,
    xid: b.readUInt32BE(4),
    mac: macText(b.subarray(28, 34)),
    ciaddr: ipText(b, 12),
    yiaddr: ipText(b, 16),
    siaddr: ipText(b, 20),
    file,
    options,
  };
}

/** Option 43's PXE sub-options: discovery control (6), boot servers (8), the first menu item (9). */
export interface PxeVendor {
  discoveryControl: number | undefined;
  firstItemType: number | undefined;
  hasServers: boolean;
}

export function pxeVendorOf(o43: Buffer | undefined): PxeVendor {
  const v: PxeVendor = { discoveryControl: undefined, firstItemType: undefined, hasServers: false };
  if (!o43) return v;
  for (let at = 0; at + 1 < o43.length; ) {
    const code = o43[at] as number;
    if (code === 255) break;
    if (code === 0) {
      at++;
      continue;
    }
    const len = o43[at + 1] as number;
    const value = o43.subarray(at + 2, at + 2 + len);
    if (code === 6 && len >= 1) v.discoveryControl = value[0];
    if (code === 8) v.hasServers = true;
    if (code === 9 && len >= 2 && v.firstItemType === undefined) v.firstItemType = value.readUInt16BE(0);
    at += 2 + len;
  }
  return v;
}

// TFTP (RFC 1350, 2347-2349, 7440)
export const TFTP = { rrq: 1, data: 3, ack: 4, error: 5, oack: 6 } as const;

export function rrq(file: string, options: [string, string][]): Buffer {
  const parts = [file, 'octet', ...options.flat()];
  return Buffer.concat([Buffer.from([0, TFTP.rrq]), ...parts.map((p) => Buffer.from(`${p}\0`, 'latin1'))]);
}

export function ack(block: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(TFTP.ack, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

export function tftpError(code: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([0, TFTP.error, 0, code]), Buffer.from(`${message}\0`, 'latin1')]);
}

export type TftpIn =
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'oack'; options: Map<string, string> }
  | { op: 'error'; code: number; message: string }
  | { op: 'other' };

export function decodeTftp(b: Buffer): TftpIn {
  if (b.length < 4) return { op: 'other' };
  const op = b.readUInt16BE(0);
  if (op === TFTP.data) return { op: 'data', block: b.readUInt16BE(2), data: b.subarray(4) };
  if (op === TFTP.error) return { op: 'error', code: b.readUInt16BE(2), message: b.toString('latin1', 4).replace(/\0.*$/s, '') };
  if (op === TFTP.oack) {
    const words = b.toString('latin1', 2).split('\0');
    const options = new Map<string, string>();
    for (let i = 0; i + 1 < words.length; i += 2) if (words[i]) options.set((words[i] as string).toLowerCase(), words[i + 1] as string);
    return { op: 'oack', options };
  }
  return { op: 'other' };
}
