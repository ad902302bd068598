import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePacket, MessageType, Opt, type DhcpPacket } from '../../lib/dhcp/packet.js';
import { decide, RateLimiter, type Decision, type PolicyConfig, type Port } from '../../lib/dhcp/policy.js';
import type { Firmware } from '../../lib/netboot/ipxe.js';
import { GUID, MAC, requestPacket, type RequestSpec } from '../helpers/dhcp.js';

const BINARIES: Partial<Record<Firmware, string>> = {
  bios: 'ipxe/undionly.kpxe',
  'efi-x64': 'ipxe/snponly.efi',
  'efi-ia32': 'ipxe/ipxe-i386.efi',
  'efi-arm64': 'ipxe/snponly-arm64.efi',
};
const CONFIG: PolicyConfig = {
  serverAddress: '198.18.0.2',
  httpPort: 8080,
  binaryFor: (fw) => (BINARIES[fw] ? { name: BINARIES[fw] as string } : undefined),
};

type Reply = Extract<Decision, { kind: 'reply' }>;

function reply(spec: RequestSpec, port: Port = 'dhcp', config = CONFIG): { d: Reply; p: DhcpPacket } {
  const d = decide(requestPacket(spec), port, config);
  assert.equal(d.kind, 'reply', d.kind === 'ignore' ? `${d.reason}: ${d.detail}` : '');
  const r = decodePacket((d as Reply).bytes);
  assert.equal(r.kind, 'packet');
  return { d: d as Reply, p: (r as { packet: DhcpPacket }).packet };
}

function ignored(spec: RequestSpec, port: Port = 'dhcp', config = CONFIG): string {
  const d = decide(requestPacket(spec), port, config);
  assert.equal(d.kind, 'ignore');
  return (d as { reason: string }).reason;
}

const opt = (p: DhcpPacket, code: number) => p.options.get(code);

test('UEFI PXE (edk2 x64) DISCOVER on 67: a proxy offer with 54, 60, 97, the file twice, and no option 43', () => {
  const { d, p } = reply({ guid: GUID, xid: 0xcafe0001 });
  assert.equal(d.client, 'uefi-pxe');
  assert.deepEqual(d.to, { kind: 'broadcast' });
  assert.equal(p.op, 2);
  assert.equal(p.xid, 0xcafe0001);
  assert.equal(p.htype, 1);
  assert.equal(p.hlen, 6);
  assert.deepEqual(p.chaddr.subarray(0, 6), MAC);
  assert.equal(p.flags, 0x8000);
  assert.equal(p.yiaddr, '0.0.0.0');
  assert.equal(p.ciaddr, '0.0.0.0');
  assert.equal(p.siaddr, '198.18.0.2');
  assert.equal(p.giaddr, '0.0.0.0');
  assert.deepEqual([...p.options.keys()], [Opt.messageType, Opt.serverId, Opt.vendorClass, Opt.clientGuid, Opt.bootFile]);
  assert.equal(opt(p, Opt.messageType)?.[0], MessageType.offer);
  assert.deepEqual(opt(p, Opt.serverId), Buffer.from([198, 18, 0, 2]));
  assert.equal(opt(p, Opt.vendorClass)?.toString(), 'PXEClient');
  assert.deepEqual(opt(p, Opt.clientGuid), GUID);
  assert.equal(opt(p, Opt.vendorSpecific), undefined);
  assert.equal(p.file, 'ipxe/snponly.efi');
  assert.equal(opt(p, Opt.bootFile)?.toString(), 'ipxe/snponly.efi');
});

test('4011: REQUEST and INFORM get an ACK from the policy, to the source, with the new xid and ciaddr', () => {
  for (const type of [MessageType.request, MessageType.inform]) {
    const { d, p } = reply({ type, xid: 0x77, ciaddr: '198.18.0.50' }, 'proxy');
    assert.deepEqual(d.to, { kind: 'source' });
    assert.equal(opt(p, Opt.messageType)?.[0], MessageType.ack);
    assert.equal(p.xid, 0x77);
    assert.equal(p.ciaddr, '198.18.0.50');
    assert.equal(p.flags, 0);
    assert.equal(p.siaddr, '198.18.0.2');
    assert.equal(p.file, 'ipxe/snponly.efi');
    assert.equal(opt(p, Opt.serverId)?.length, 4);
  }
});

test('only DISCOVER on 67, only REQUEST/INFORM on 4011, only requests', () => {
  assert.equal(ignored({ type: MessageType.request }), 'wrong-message-type');
  assert.equal(ignored({ type: MessageType.release }), 'wrong-message-type');
  assert.equal(ignored({ type: MessageType.discover }, 'proxy'), 'wrong-message-type');
  const noType = requestPacket();
  noType.options.delete(Opt.messageType);
  assert.equal((decide(noType, 'dhcp', CONFIG) as { reason: string }).reason, 'wrong-message-type');
  const asReply = requestPacket();
  asReply.op = 2;
  assert.equal((decide(asReply, 'dhcp', CONFIG) as { reason: string }).reason, 'not-a-request');
});

test('only PXEClient/HTTPClient with option 93', () => {
  assert.equal(ignored({ vendorClass: undefined }), 'not-pxe');
  assert.equal(ignored({ vendorClass: 'MSFT 5.0' }), 'not-pxe');
  assert.equal(ignored({ vendorClass: 'PXECl' }), 'not-pxe');
  assert.equal(ignored({ arch: undefined }), 'no-arch');
  assert.equal(ignored({ arch: Buffer.from([7]) }), 'unsupported-arch');
  assert.equal(ignored({ arch: 0x1b }), 'unsupported-arch'); // RISC-V 64
  assert.equal(ignored({ arch: 16 }), 'unsupported-arch'); // PXEClient with an HTTP Boot arch
  assert.equal(ignored({ vendorClass: 'HTTPClient:Arch:00007', arch: 7 }), 'unsupported-arch');
});

test('BIOS PXE ROM (arch 0): undionly.kpxe over TFTP and option 43 = discovery control 8', () => {
  const { d, p } = reply({ arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' });
  assert.equal(d.client, 'bios-pxe');
  assert.deepEqual(opt(p, Opt.vendorSpecific), Buffer.from([6, 1, 8, 0xff]));
  assert.equal(p.file, 'ipxe/undionly.kpxe');
  assert.equal(opt(p, Opt.bootFile)?.toString(), 'ipxe/undionly.kpxe');
  assert.equal(opt(p, Opt.clientGuid), undefined, 'no 97 when the client sent none');
});

test('the architecture comes from option 93, never from option 60', () => {
  assert.equal(reply({ arch: 7, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' }).d.client, 'uefi-pxe');
  assert.equal(reply({ arch: 0, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' }).d.client, 'bios-pxe');
  assert.equal(reply({ arch: 9 }).p.file, 'ipxe/snponly.efi');
  assert.equal(reply({ arch: 6 }).p.file, 'ipxe/ipxe-i386.efi');
  assert.equal(reply({ arch: 11 }).p.file, 'ipxe/snponly-arm64.efi');
  // Several architectures listed: the first one counts.
  assert.equal(reply({ arch: Buffer.from([0, 11, 0, 7]) }).p.file, 'ipxe/snponly-arm64.efi');
});

test('iPXE (77 = iPXE, or 175 with HTTP): the boot.ipxe URL with an IP literal, whatever its arch or option 60', () => {
  const byUserClass = reply({ arch: 0, vendorClass: 'PXEClient', userClass: 'iPXE' });
  assert.equal(byUserClass.d.client, 'ipxe');
  assert.equal(byUserClass.p.file, 'http://198.18.0.2:8080/boot.ipxe');
  assert.equal(opt(byUserClass.p, Opt.bootFile)?.toString(), 'http://198.18.0.2:8080/boot.ipxe');
  assert.equal(opt(byUserClass.p, Opt.vendorSpecific), undefined);
  const byFeatures = reply({ arch: 7, ipxeFeatures: Buffer.from([0x10, 1, 1, 0, 0x13, 1, 1]) });
  assert.equal(byFeatures.p.file, 'http://198.18.0.2:8080/boot.ipxe');
  assert.equal(reply({ arch: 0x1b, userClass: 'iPXE' }).d.client, 'ipxe', 'an iPXE on any architecture gets the script');
  assert.equal(reply({ userClass: 'iPXE' }, 'dhcp', { ...CONFIG, httpPort: 80 }).p.file, 'http://198.18.0.2/boot.ipxe');
  assert.equal(reply({ userClass: 'iPXE', type: MessageType.request }, 'proxy').p.file, 'http://198.18.0.2:8080/boot.ipxe');
  // RFC 3004 user class format ("\x04iPXE") is not iPXE's own.
  assert.equal(reply({ userClass: '\x04iPXE', arch: 0 }).d.client, 'bios-pxe');
});

test('iPXE without the HTTP feature: a full iPXE for its architecture over TFTP', () => {
  for (const features of [
    Buffer.from([0x10, 1, 1]),
    Buffer.from([0x13, 1, 0]),
    Buffer.from([0x13, 5, 1]),
    Buffer.from([0x13]),
    Buffer.alloc(0),
  ]) {
    const { d, p } = reply({ arch: 0, ipxeFeatures: features, userClass: 'iPXE' });
    assert.equal(d.client, 'ipxe');
    assert.equal(p.file, 'ipxe/undionly.kpxe');
  }
});

test('UEFI HTTP Boot: option 60 HTTPClient and the http:// URL of the EFI binary', () => {
  const { d, p } = reply({ vendorClass: 'HTTPClient:Arch:00016:UNDI:003000', arch: 16 });
  assert.equal(d.client, 'uefi-http');
  assert.equal(opt(p, Opt.vendorClass)?.toString(), 'HTTPClient');
  assert.equal(p.file, 'http://198.18.0.2:8080/ipxe/snponly.efi');
  assert.equal(opt(p, Opt.bootFile)?.toString(), 'http://198.18.0.2:8080/ipxe/snponly.efi');
  assert.equal(opt(p, Opt.serverId)?.length, 4);
  assert.equal(reply({ vendorClass: 'HTTPClient', arch: 19 }).p.file, 'http://198.18.0.2:8080/ipxe/snponly-arm64.efi');
  assert.equal(reply({ vendorClass: 'HTTPClient', arch: 15 }).p.file, 'http://198.18.0.2:8080/ipxe/ipxe-i386.efi');
});

test('a missing binary silences that firmware only', () => {
  assert.equal(ignored({ arch: 18, vendorClass: 'HTTPClient' }), 'no-boot-file');
  assert.equal(ignored({ arch: 10 }), 'no-boot-file');
  const noBios: PolicyConfig = { ...CONFIG, binaryFor: (fw) => (fw === 'bios' ? undefined : { name: 'x.efi' }) };
  assert.equal(ignored({ arch: 0 }, 'dhcp', noBios), 'no-boot-file');
  assert.equal(reply({ arch: 7 }, 'dhcp', noBios).p.file, 'x.efi');
  assert.equal(reply({ arch: 0, userClass: 'iPXE' }, 'dhcp', noBios).d.client, 'ipxe');
});

test('option 97 echoed only when 17 bytes; relayed requests go back to giaddr:67; a reply that cannot fit is refused', () => {
  assert.equal(opt(reply({ guid: Buffer.alloc(16, 1) }).p, Opt.clientGuid), undefined);
  assert.equal(opt(reply({ guid: Buffer.alloc(18, 1) }).p, Opt.clientGuid), undefined);
  const relayed = reply({ giaddr: '198.18.0.1' });
  assert.deepEqual(relayed.d.to, { kind: 'relay', address: '198.18.0.1' });
  assert.equal(relayed.p.giaddr, '198.18.0.1');
  const longName: PolicyConfig = { ...CONFIG, binaryFor: () => ({ name: 'n'.repeat(200) }) };
  assert.equal(ignored({}, 'dhcp', longName), 'reply-too-large');
  // An odd hardware type and a 16-byte chaddr are echoed as they came.
  const ib = requestPacket({ chaddr: Buffer.alloc(16, 7) });
  ib.htype = 32;
  const d = decide(ib, 'dhcp', CONFIG) as Reply;
  const back = (decodePacket(d.bytes) as { packet: DhcpPacket }).packet;
  assert.equal(back.htype, 32);
  assert.equal(back.hlen, 16);
  assert.deepEqual(back.chaddr, Buffer.alloc(16, 7));
});

test('rate limits: a burst per MAC, refilled over time; a total cap; a bounded map of MACs', () => {
  let now = 0;
  const limiter = new RateLimiter({ perClientBurst: 3, perClientPerSecond: 1, totalBurst: 5, totalPerSecond: 2, maxClients: 4 }, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('a')), ['ok', 'ok', 'ok', 'rate-limited-client']);
  now = 1000; // one more for 'a'; the total bucket refilled by 2 → 4 left
  assert.equal(limiter.take('a'), 'ok');
  assert.equal(limiter.take('a'), 'rate-limited-client');
  assert.deepEqual(['b', 'c', 'd', 'e'].map((m) => limiter.take(m)), ['ok', 'ok', 'ok', 'rate-limited-total']);
  assert.ok(limiter.trackedClients <= 4);
  for (let i = 0; i < 100; i++) limiter.take(`m${i}`);
  assert.equal(limiter.trackedClients, 4);
  const defaults = new RateLimiter();
  assert.equal(defaults.take('x'), 'ok');
});

test('a forged giaddr that is not a unicast address is not relayed to', () => {
  for (const giaddr of ['255.255.255.255', '224.0.0.1', '0.1.2.3']) assert.equal(ignored({ giaddr }), 'malformed', giaddr);
  assert.deepEqual(reply({ giaddr: '10.0.0.1' }).d.to, { kind: 'relay', address: '10.0.0.1' });
});
