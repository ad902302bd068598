// Whom the proxy answers and with what: a decoded request in, a reply (and where it goes) or the
// reason to stay silent out. Pure apart from the rate limiter's clock, which is injected.
// The rules are issue 11's and ../shared/pxe-notes.md's; the why of each is noted where it applies.
import type { Firmware } from '../netboot/ipxe.js';
import { encodePacket, MessageType, macOf, Opt, OP_REPLY, OP_REQUEST, type DhcpPacket } from './packet.js';

/** Which socket a request came in on: UDP 67 (broadcast DHCP) or 4011 (PXE boot server). */
export type Port = 'dhcp' | 'proxy';

export type ClientKind = 'ipxe' | 'bios-pxe' | 'uefi-pxe' | 'uefi-http';

export type IgnoreReason =
  | 'malformed'
  | 'not-a-request'
  | 'wrong-message-type'
  | 'not-pxe'
  | 'no-arch'
  | 'unsupported-arch'
  | 'no-boot-file'
  | 'reply-too-large'
  | 'rate-limited-client'
  | 'rate-limited-total';

export const IGNORE_REASONS: readonly IgnoreReason[] = [
  'malformed',
  'not-a-request',
  'wrong-message-type',
  'not-pxe',
  'no-arch',
  'unsupported-arch',
  'no-boot-file',
  'reply-too-large',
  'rate-limited-client',
  'rate-limited-total',
];
export const CLIENT_KINDS: readonly ClientKind[] = ['ipxe', 'bios-pxe', 'uefi-pxe', 'uefi-http'];

/** Where a reply goes: broadcast to 255.255.255.255:68, unicast to a relay's giaddr:67, or back to the sender (4011). */
export type Destination = { kind: 'broadcast' } | { kind: 'relay'; address: string } | { kind: 'source' };

export interface PolicyConfig {
  /** The IPv4 address we advertise: option 54, siaddr, and the host of every URL. */
  serverAddress: string;
  /** The HTTP port for boot.ipxe and HTTP Boot URLs. */
  httpPort: number;
  /** The iPXE binary for a firmware (its name relative to the served root), if there is one. */
  binaryFor(firmware: Firmware): { name: string } | undefined;
  /**
   * The Secure Boot path's first file (shim) for this UEFI firmware and MAC, when the signed path
   * is chosen for it (netboot/catalog.ts); undefined: iPXE as usual.
   */
  signedFor?: ((firmware: Firmware, mac: string) => { name: string } | undefined) | undefined;
}

/** Which chain the boot file starts: iPXE, or the signed shim → GRUB → kernel. */
export type BootPath = 'ipxe' | 'signed';

export type Decision =
  | { kind: 'reply'; client: ClientKind; arch: number; bootFile: string; bootPath: BootPath; bytes: Buffer; to: Destination }
  | { kind: 'ignore'; reason: IgnoreReason; detail: string };

/** Option 93 (RFC 4578, IANA registry; 7 and 9 per errata 4624) → firmware and boot method. */
const ARCHITECTURES: ReadonlyMap<number, { firmware: Firmware; method: 'pxe' | 'http' }> = new Map([
  [0, { firmware: 'bios', method: 'pxe' }],
  [6, { firmware: 'efi-ia32', method: 'pxe' }],
  [7, { firmware: 'efi-x64', method: 'pxe' }],
  [9, { firmware: 'efi-x64', method: 'pxe' }], // EBC on paper, x64 firmware in practice (as Pixiecore)
  [10, { firmware: 'efi-arm32', method: 'pxe' }],
  [11, { firmware: 'efi-arm64', method: 'pxe' }],
  [15, { firmware: 'efi-ia32', method: 'http' }],
  [16, { firmware: 'efi-x64', method: 'http' }],
  [18, { firmware: 'efi-arm32', method: 'http' }],
  [19, { firmware: 'efi-arm64', method: 'http' }],
]);

/** PXE discovery control = 8 (boot the file in this offer: no boot-server discovery, no menu), then END. */
const BIOS_VENDOR_OPTIONS = Buffer.from([0x06, 0x01, 0x08, 0xff]);
/** iPXE's feature sub-option for HTTP inside option 175. */
const IPXE_FEATURE_HTTP = 0x13;

/** The request's option 60 class, by its prefix (the rest, `:Arch:...`, is never trusted). */
function vendorClassOf(p: DhcpPacket): 'PXEClient' | 'HTTPClient' | undefined {
  const v = p.options.get(Opt.vendorClass)?.toString('latin1');
  if (v?.startsWith('PXEClient')) return 'PXEClient';
  if (v?.startsWith('HTTPClient')) return 'HTTPClient';
  return undefined;
}

/** iPXE's option 175 has an HTTP feature sub-option (a bounded walk over code/length/value). */
function ipxeHasHttp(encap: Buffer): boolean {
  for (let at = 0; at + 1 < encap.length; ) {
    const code = encap[at] as number;
    if (code === 0) {
      at += 1;
      continue;
    }
    const len = encap[at + 1] as number;
    if (code === IPXE_FEATURE_HTTP) return len >= 1 && at + 2 + len <= encap.length && encap[at + 2] !== 0;
    at += 2 + len;
  }
  return false;
}

/** A request from iPXE itself: option 77 is the raw 4 bytes `iPXE`, or option 175 is there. */
function ipxeOf(p: DhcpPacket): 'http' | 'no-http' | undefined {
  const encap = p.options.get(Opt.ipxeEncap);
  if (encap !== undefined) return ipxeHasHttp(encap) ? 'http' : 'no-http';
  return p.options.get(Opt.userClass)?.toString('latin1') === 'iPXE' ? 'http' : undefined;
}

function httpUrl(config: PolicyConfig, path: string): string {
  const port = config.httpPort === 80 ? '' : `:${config.httpPort}`;
  return `http://${config.serverAddress}${port}/${path}`;
}

/** The facts about a request the log wants whether or not it is answered. */
export interface RequestFacts {
  mac: string;
  xid: number;
  messageType: number | undefined;
  arch: number | undefined;
}

export function factsOf(p: DhcpPacket): RequestFacts {
  const type = p.options.get(Opt.messageType);
  const arch = p.options.get(Opt.clientArch);
  return {
    mac: macOf(p),
    xid: p.xid,
    messageType: type?.length === 1 ? type[0] : undefined,
    arch: arch !== undefined && arch.length >= 2 ? arch.readUInt16BE(0) : undefined,
  };
}

/** Decide about one decoded request that arrived on `port`. */
export function decide(p: DhcpPacket, port: Port, config: PolicyConfig): Decision {
  const ignore = (reason: IgnoreReason, detail: string): Decision => ({ kind: 'ignore', reason, detail });
  if (p.op !== OP_REQUEST) return ignore('not-a-request', `op ${p.op}`);

  // DISCOVER on 67 only; REQUEST/INFORM on 4011 only. A REQUEST on 67 belongs to the LAN's server.
  const type = factsOf(p).messageType;
  const expected = port === 'dhcp' ? type === MessageType.discover : type === MessageType.request || type === MessageType.inform;
  if (!expected) return ignore('wrong-message-type', `message type ${type ?? 'none'} on ${port === 'dhcp' ? 67 : 4011}`);

  const vendorClass = vendorClassOf(p);
  if (vendorClass === undefined) return ignore('not-pxe', 'option 60 is not PXEClient or HTTPClient');
  const archOption = p.options.get(Opt.clientArch);
  if (archOption === undefined) return ignore('no-arch', 'no option 93');
  // Option 93 may list several architectures; the first is the one running.
  const archCode = archOption.length >= 2 ? archOption.readUInt16BE(0) : -1;
  const arch = ARCHITECTURES.get(archCode);
  const unsupported = () => ignore('unsupported-arch', `option 93 = ${archOption.toString('hex') || 'empty'}`);

  const ipxe = ipxeOf(p);
  let client: ClientKind;
  let bootFile: string;
  let bootPath: BootPath = 'ipxe';
  // The firmware itself (not an iPXE it already runs) may be given the signed chain instead.
  const signed =
    ipxe === undefined && arch !== undefined && arch.firmware !== 'bios' ? config.signedFor?.(arch.firmware, macOf(p)) : undefined;
  if (signed !== undefined) {
    if (vendorClass === 'HTTPClient') {
      if (arch?.method !== 'http') return unsupported();
      client = 'uefi-http';
      bootFile = httpUrl(config, signed.name);
    } else {
      if (arch?.method !== 'pxe') return unsupported();
      client = 'uefi-pxe';
      bootFile = signed.name;
    }
    bootPath = 'signed';
  } else if (ipxe === 'http') {
    // Already iPXE, on any architecture: give it the script, never another iPXE binary (that is
    // the chainload loop).
    client = 'ipxe';
    bootFile = httpUrl(config, 'boot.ipxe');
  } else {
    if (arch === undefined) return unsupported();
    const binary = config.binaryFor(arch.firmware);
    if (binary === undefined) return ignore('no-boot-file', `no iPXE binary for ${arch.firmware}`);
    if (ipxe === 'no-http') {
      // An iPXE built without HTTP: a full iPXE over TFTP, which then asks again with HTTP.
      client = 'ipxe';
      bootFile = binary.name;
    } else if (vendorClass === 'HTTPClient') {
      if (arch.method !== 'http') return unsupported();
      client = 'uefi-http';
      bootFile = httpUrl(config, binary.name);
    } else {
      if (arch.method !== 'pxe') return unsupported();
      client = arch.firmware === 'bios' ? 'bios-pxe' : 'uefi-pxe';
      bootFile = binary.name;
    }
  }

  const options = new Map<number, Buffer>();
  options.set(Opt.messageType, Buffer.from([port === 'dhcp' ? MessageType.offer : MessageType.ack]));
  // edk2's DHCP driver drops any offer without a server identifier.
  options.set(Opt.serverId, ipv4Bytes(config.serverAddress));
  options.set(Opt.vendorClass, Buffer.from(client === 'uefi-http' ? 'HTTPClient' : 'PXEClient'));
  // BIOS ROMs: boot the offered file, no discovery. Never to UEFI (some ignore such offers).
  if (client === 'bios-pxe') options.set(Opt.vendorSpecific, BIOS_VENDOR_OPTIONS);
  const guid = p.options.get(Opt.clientGuid);
  if (guid?.length === 17) options.set(Opt.clientGuid, guid);
  // The boot file in both places: iPXE prefers `file`, edk2 option 67.
  options.set(Opt.bootFile, Buffer.from(bootFile, 'latin1'));

  const encoded = encodePacket({
    op: OP_REPLY,
    htype: p.htype,
    hlen: p.hlen,
    hops: 0,
    xid: p.xid,
    secs: 0,
    flags: port === 'dhcp' ? 0x8000 : 0,
    ciaddr: port === 'proxy' ? p.ciaddr : '0.0.0.0',
    yiaddr: '0.0.0.0', // a proxy never hands out an address: this is what makes it a proxy offer
    siaddr: config.serverAddress,
    giaddr: p.giaddr,
    chaddr: p.chaddr,
    sname: '',
    file: bootFile,
    options,
  });
  if (encoded.kind === 'too-large') return ignore('reply-too-large', encoded.reason);

  const to: Destination =
    port === 'proxy' ? { kind: 'source' } : p.giaddr !== '0.0.0.0' ? { kind: 'relay', address: p.giaddr } : { kind: 'broadcast' };
  // A relay is a unicast host: a forged giaddr must not aim replies at a broadcast or multicast
  // address (or 0/8). Loopback is harmless: our own port 67 drops a BOOTREPLY.
  if (to.kind === 'relay' && !unicast(to.address)) return ignore('malformed', `giaddr ${to.address} is not a unicast address`);
  return { kind: 'reply', client, arch: archCode, bootFile, bootPath, bytes: encoded.bytes, to };
}

function unicast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first !== 0 && first < 224;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

export interface RateLimits {
  /** Replies one MAC may get in a burst, and per second after it. */
  perClientBurst: number;
  perClientPerSecond: number;
  /** Replies in all, in a burst and per second: each kind of traffic has a bucket of this size. */
  totalBurst: number;
  totalPerSecond: number;
  /** MACs remembered at once; the least recently seen is forgotten first. */
  maxClients: number;
}

/**
 * The traffic a reply answers, each with its own overall bucket so that none starves another:
 * firmware DISCOVERs on 67, boot-server requests on 4011 (edk2 gives up after 4 in 10 s), and
 * iPXE's own DISCOVERs on 67 (iPXE waits only about 3 s for a proxy offer).
 */
export type Traffic = 'discover' | 'proxy' | 'ipxe';
export const TRAFFIC: readonly Traffic[] = ['discover', 'proxy', 'ipxe'];

/**
 * Per MAC: firmware retransmits a DISCOVER every 1-4 s at first (iPXE, edk2) and asks a few times
 * on 4011; 8 replies at once and 2 a second leave every real client answered at once and hold a
 * client gone mad to 2 replies a second. Overall, per kind of traffic: a reply costs
 * microseconds, so the ceiling is sized for a thousand machines powered on within two seconds
 * (2000 at once, 1000 a second after), and only bounds what a flood of forged DISCOVERs can
 * make us broadcast (three buckets: at most 3000 replies of ~350 bytes a second).
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  perClientBurst: 8,
  perClientPerSecond: 2,
  totalBurst: 2000,
  totalPerSecond: 1000,
  maxClients: 8192,
};

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets per MAC and, per kind of traffic, overall; the per-MAC map is bounded. */
export class RateLimiter {
  private readonly clients = new Map<string, Bucket>();
  private readonly totals: Record<Traffic, Bucket>;

  constructor(
    private readonly limits: RateLimits = DEFAULT_RATE_LIMITS,
    private readonly now: () => number = () => performance.now(),
  ) {
    const full = () => ({ tokens: limits.totalBurst, at: now() });
    this.totals = { discover: full(), proxy: full(), ipxe: full() };
  }

  /** Take one reply's token for `mac` and its kind of traffic, or say which limit stops it. */
  take(mac: string, traffic: Traffic = 'discover'): 'ok' | 'rate-limited-client' | 'rate-limited-total' {
    const now = this.now();
    let client = this.clients.get(mac);
    if (client === undefined) {
      if (this.clients.size >= this.limits.maxClients) this.clients.delete(this.clients.keys().next().value as string);
      client = { tokens: this.limits.perClientBurst, at: now };
    }
    // Re-insert: Map order is then least recently seen first.
    this.clients.delete(mac);
    this.clients.set(mac, client);
    const total = this.totals[traffic];
    refill(client, now, this.limits.perClientBurst, this.limits.perClientPerSecond);
    refill(total, now, this.limits.totalBurst, this.limits.totalPerSecond);
    if (client.tokens < 1) return 'rate-limited-client';
    if (total.tokens < 1) return 'rate-limited-total';
    client.tokens -= 1;
    total.tokens -= 1;
    return 'ok';
  }

  get trackedClients(): number {
    return this.clients.size;
  }
}

/** The kind of traffic a reply decided on `port` answers. */
export function trafficOf(port: Port, client: ClientKind): Traffic {
  if (port === 'proxy') return 'proxy';
  return client === 'ipxe' ? 'ipxe' : 'discover';
}

function refill(bucket: Bucket, now: number, burst: number, perSecond: number): void {
  bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
  bucket.at = now;
}
