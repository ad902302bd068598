import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePacket, encodePacket, MAX_REPLY_BYTES, macOf, Opt, type DhcpPacket } from '../../lib/dhcp/packet.js';
import { decide } from '../../lib/dhcp/policy.js';
import { GUID, requestBytes, requestPacket } from '../helpers/dhcp.js';

function decoded(bytes: Buffer): DhcpPacket {
  const r = decodePacket(bytes);
  assert.equal(r.kind, 'packet', r.kind === 'malformed' ? r.reason : '');
  return (r as { packet: DhcpPacket }).packet;
}

function malformed(bytes: Buffer): string {
  const r = decodePacket(bytes);
  assert.equal(r.kind, 'malformed');
  return (r as { reason: string }).reason;
}

test('round trip: header fields, chaddr, file and options survive encode then decode', () => {
  const p = requestPacket({ guid: GUID, giaddr: '198.18.0.1', ciaddr: '198.18.0.50', xid: 0xfedcba98 });
  p.file = 'ipxe/undionly.kpxe';
  p.sname = 'server';
  const bytes = requestBytes({ guid: GUID, giaddr: '198.18.0.1', ciaddr: '198.18.0.50', xid: 0xfedcba98 });
  assert.equal(bytes.length, 301);
  assert.equal(requestBytes().length, 300, 'padded to the BOOTP minimum');
  const back = decoded((encodePacket(p) as { bytes: Buffer }).bytes);
  assert.equal(back.op, 1);
  assert.equal(back.htype, 1);
  assert.equal(back.hlen, 6);
  assert.equal(back.xid, 0xfedcba98);
  assert.equal(back.flags, 0x8000);
  assert.equal(back.ciaddr, '198.18.0.50');
  assert.equal(back.giaddr, '198.18.0.1');
  assert.equal(back.file, 'ipxe/undionly.kpxe');
  assert.equal(back.sname, 'server');
  assert.equal(macOf(back), '52:54:00:12:34:56');
  assert.deepEqual(back.options.get(Opt.clientGuid), GUID);
  assert.equal(back.options.get(Opt.vendorClass)?.toString(), 'PXEClient:Arch:00007:UNDI:003000');
  assert.deepEqual([...back.options.keys()], [...p.options.keys()]);
});

test('options: pad skipped, repeated options concatenated (RFC 3396), END optional, after END ignored', () => {
  const base = requestBytes().subarray(0, 240);
  const opts = Buffer.from([0, 0, 53, 1, 1, 60, 3, 0x50, 0x58, 0x45, 60, 2, 0x43, 0x6c, 255, 99, 200]);
  const p = decoded(Buffer.concat([base, opts]));
  assert.equal(p.options.get(60)?.toString(), 'PXECl');
  assert.equal(p.options.has(99), false);
  // No END: the options stop exactly at the end of the datagram.
  assert.equal(decoded(Buffer.concat([base, Buffer.from([53, 1, 1])])).options.get(53)?.[0], 1);
  // Nothing after the cookie at all.
  assert.equal(decoded(base).options.size, 0);
  // Option 52 (overload) is kept as an option and not followed.
  assert.deepEqual(decoded(Buffer.concat([base, Buffer.from([52, 1, 3, 255])])).options.get(52), Buffer.from([3]));
});

test('malformed: truncated, no cookie, hlen beyond chaddr, option overruns, absurd option 57', () => {
  const good = requestBytes();
  assert.match(malformed(Buffer.alloc(0)), /truncated: 0 bytes/);
  assert.match(malformed(good.subarray(0, 239)), /truncated: 239 bytes/);
  const noCookie = Buffer.from(good);
  noCookie.writeUInt32BE(0, 236);
  assert.match(malformed(noCookie), /magic cookie/);
  const bigHlen = Buffer.from(good);
  bigHlen[2] = 17;
  assert.match(malformed(bigHlen), /hlen 17/);
  const base = good.subarray(0, 240);
  assert.match(malformed(Buffer.concat([base, Buffer.from([60])])), /option 60 has no length byte/);
  assert.match(malformed(Buffer.concat([base, Buffer.from([60, 200, 1, 2, 3])])), /option 60 claims 200 bytes, only 3 left/);
  assert.match(malformed(Buffer.concat([base, Buffer.from([57, 1, 5, 255])])), /option 57 has length 1/);
  assert.match(malformed(Buffer.concat([base, Buffer.from([57, 2, 0, 10, 255])])), /option 57 says 10 bytes/);
  assert.equal(decoded(Buffer.concat([base, Buffer.from([57, 2, 0xff, 0xff, 255])])).options.get(57)?.readUInt16BE(0), 65535);
});

test('text fields stop at NUL and never throw on odd bytes', () => {
  const bytes = requestBytes();
  bytes.write('abc\0junk', 108, 'latin1');
  bytes.fill(0xff, 44, 108); // sname without any NUL: all 64 bytes
  const p = decoded(bytes);
  assert.equal(p.file, 'abc');
  assert.equal(p.sname.length, 64);
});

test('encode: bounded under 1472 bytes, fields and options that do not fit are refused', () => {
  const p = requestPacket();
  p.file = 'x'.repeat(128);
  assert.equal(encodePacket(p).kind, 'too-large');
  p.file = 'x'.repeat(127); // and its NUL
  assert.equal(encodePacket(p).kind, 'bytes');
  p.sname = 's'.repeat(64);
  assert.equal(encodePacket(p).kind, 'too-large');
  p.sname = '';
  p.options.set(200, Buffer.alloc(256));
  assert.match((encodePacket(p) as { reason: string }).reason, /option 200 is 256 bytes/);
  p.options.delete(200);
  for (let code = 200; code < 206; code++) p.options.set(code, Buffer.alloc(255));
  assert.match((encodePacket(p) as { reason: string }).reason, /exceeds 1472/);
  p.options.delete(205);
  p.options.delete(204);
  const ok = encodePacket(p);
  assert.equal(ok.kind, 'bytes');
  assert.ok((ok as { bytes: Buffer }).bytes.length <= MAX_REPLY_BYTES);
  p.siaddr = '300.1.1.1';
  assert.throws(() => encodePacket(p), RangeError);
});

/** A small deterministic PRNG (mulberry32) so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('fuzz: garbage, truncations and mutations never throw; decodable ones get a bounded reply or a reason', () => {
  const random = prng(11);
  const int = (n: number) => Math.floor(random() * n);
  const config = { serverAddress: '198.18.0.2', httpPort: 8080, binaryFor: () => ({ name: 'ipxe/snponly.efi' }) };
  const seeds = [
    requestBytes({ guid: GUID }),
    requestBytes({ arch: 0, userClass: 'iPXE', ipxeFeatures: Buffer.from([0x13, 1, 1, 0x19, 1, 1]) }),
    requestBytes({ type: 3, vendorClass: 'HTTPClient:Arch:00016', arch: 16 }),
  ];
  const counts = { packet: 0, malformed: 0, reply: 0 };
  const started = Date.now();
  for (let i = 0; i < 20_000 && Date.now() - started < 10_000; i++) {
    let bytes: Buffer;
    const seed = seeds[i % seeds.length] as Buffer;
    switch (i % 4) {
      case 0: // garbage, up to a 1500-byte frame
        bytes = Buffer.from(Array.from({ length: int(1501) }, () => int(256)));
        break;
      case 1: // truncated
        bytes = seed.subarray(0, int(seed.length + 1));
        break;
      case 2: {
        // a valid header with random option bytes
        bytes = Buffer.concat([seed.subarray(0, 240), Buffer.from(Array.from({ length: int(1300) }, () => int(256)))]);
        break;
      }
      default: {
        // a few bytes of a valid packet flipped
        bytes = Buffer.from(seed);
        for (let k = int(8) + 1; k > 0; k--) bytes[int(bytes.length)] = int(256);
      }
    }
    const r = decodePacket(bytes);
    counts[r.kind] += 1;
    if (r.kind === 'malformed') {
      assert.equal(typeof r.reason, 'string');
      continue;
    }
    for (const port of ['dhcp', 'proxy'] as const) {
      const d = decide(r.packet, port, config);
      if (d.kind === 'reply') {
        counts.reply += 1;
        assert.ok(d.bytes.length <= MAX_REPLY_BYTES);
        assert.equal(decodePacket(d.bytes).kind, 'packet');
      } else assert.equal(typeof d.reason, 'string');
    }
  }
  assert.ok(counts.packet > 1000 && counts.malformed > 1000 && counts.reply > 100, JSON.stringify(counts));
});
