// Build DHCP requests as firmware sends them, for the codec, policy and socket tests.
import { encodePacket, MessageType, Opt, OP_REQUEST, type DhcpPacket } from '../../lib/dhcp/packet.js';

export const MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
export const GUID = Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)]);

export interface RequestSpec {
  type?: number;
  vendorClass?: string | undefined;
  arch?: number | Buffer | undefined;
  userClass?: string;
  ipxeFeatures?: Buffer;
  guid?: Buffer;
  giaddr?: string;
  ciaddr?: string;
  xid?: number;
  chaddr?: Buffer;
  extra?: [number, Buffer][];
}

/** A request packet (not yet encoded). Defaults: an edk2 x64 PXE DISCOVER. */
export function requestPacket(spec: RequestSpec = {}): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(Opt.messageType, Buffer.from([spec.type ?? MessageType.discover]));
  if (spec.userClass !== undefined) options.set(Opt.userClass, Buffer.from(spec.userClass));
  const arch = 'arch' in spec ? spec.arch : 7;
  if (arch !== undefined) options.set(Opt.clientArch, Buffer.isBuffer(arch) ? arch : Buffer.from([arch >> 8, arch & 0xff]));
  const vendorClass = 'vendorClass' in spec ? spec.vendorClass : 'PXEClient:Arch:00007:UNDI:003000';
  if (vendorClass !== undefined) options.set(Opt.vendorClass, Buffer.from(vendorClass));
  if (spec.guid) options.set(Opt.clientGuid, spec.guid);
  if (spec.ipxeFeatures) options.set(Opt.ipxeEncap, spec.ipxeFeatures);
  for (const [code, value] of spec.extra ?? []) options.set(code, value);
  const chaddr = Buffer.alloc(16);
  (spec.chaddr ?? MAC).copy(chaddr);
  return {
    op: OP_REQUEST,
    htype: 1,
    hlen: (spec.chaddr ?? MAC).length,
    hops: 0,
    xid: spec.xid ?? 0x1234abcd,
    secs: 4,
    flags: 0x8000,
    ciaddr: spec.ciaddr ?? '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: spec.giaddr ?? '0.0.0.0',
    chaddr,
    sname: '',
    file: '',
    options,
  };
}

export function requestBytes(spec: RequestSpec = {}): Buffer {
  const encoded = encodePacket(requestPacket(spec));
  if (encoded.kind !== 'bytes') throw new Error(encoded.reason);
  return encoded.bytes;
}
