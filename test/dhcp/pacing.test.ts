// Issue 16: the DHCP ceiling is per kind of traffic, so a burst of DISCOVERs never costs a 4011
// request or iPXE's DISCOVER its answer; a client gone mad is held by its own bucket.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import { MessageType } from '../../lib/dhcp/packet.js';
import { DEFAULT_RATE_LIMITS, RateLimiter, trafficOf, type PolicyConfig } from '../../lib/dhcp/policy.js';
import { createDhcpService } from '../../lib/dhcp/server.js';
import { requestBytes } from '../helpers/dhcp.js';

const POLICY: PolicyConfig = {
  serverAddress: '127.0.0.1',
  httpPort: 8080,
  binaryFor: (fw) => (fw === 'bios' ? { name: 'ipxe/undionly.kpxe' } : { name: 'ipxe/snponly.efi' }),
};
const mac = (i: number) => Buffer.from([0x52, 0x54, 0, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]);

test('buckets per kind of traffic: DISCOVERs spending theirs leave 4011 and iPXE untouched', () => {
  let now = 0;
  const limiter = new RateLimiter(
    { perClientBurst: 8, perClientPerSecond: 2, totalBurst: 10, totalPerSecond: 5, maxClients: 100 },
    () => now,
  );
  for (let i = 0; i < 10; i++) assert.equal(limiter.take(`d${i}`, 'discover'), 'ok');
  assert.equal(limiter.take('d10', 'discover'), 'rate-limited-total');
  assert.equal(limiter.take('p0', 'proxy'), 'ok');
  assert.equal(limiter.take('i0', 'ipxe'), 'ok');
  now = 1000;
  assert.equal(limiter.take('d10', 'discover'), 'ok', 'refilled');
  assert.equal(trafficOf('proxy', 'uefi-pxe'), 'proxy');
  assert.equal(trafficOf('dhcp', 'ipxe'), 'ipxe');
  assert.equal(trafficOf('dhcp', 'bios-pxe'), 'discover');
});

test('a client gone mad is held to its own rate; the defaults take a thousand machines at once', () => {
  let now = 0;
  const limiter = new RateLimiter(DEFAULT_RATE_LIMITS, () => now);
  const answered = Array.from({ length: 100 }, () => limiter.take('mad')).filter((r) => r === 'ok').length;
  assert.equal(answered, DEFAULT_RATE_LIMITS.perClientBurst);
  now = 10_000;
  assert.equal(Array.from({ length: 100 }, () => limiter.take('mad')).filter((r) => r === 'ok').length, DEFAULT_RATE_LIMITS.perClientBurst);
  // 1000 machines within 2 s, each a DISCOVER, a 4011 request and two iPXE DISCOVERs.
  const fresh = new RateLimiter(DEFAULT_RATE_LIMITS, () => now);
  let refused = 0;
  for (let i = 0; i < 1000; i++) {
    now = 10_000 + i * 2;
    for (const t of ['discover', 'proxy', 'ipxe', 'ipxe'] as const) if (fresh.take(`m${i}`, t) !== 'ok') refused++;
  }
  assert.equal(refused, 0);
});

async function udp(): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  return { socket, port: socket.address().port, received };
}

async function until(test: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('sockets: a 4011 request is answered behind a burst of DISCOVERs that exhausts their ceiling', async () => {
  const discovers = await udp(); // stands in for 255.255.255.255:68
  const proxyClient = await udp();
  // A small ceiling that a burst of 50 DISCOVERs overruns, refilled slowly.
  const limiter = new RateLimiter({ perClientBurst: 8, perClientPerSecond: 2, totalBurst: 20, totalPerSecond: 0.001, maxClients: 1000 });
  const server = createDhcpService({
    policy: () => POLICY,
    log: () => {},
    error: () => {},
    dhcp: { address: '127.0.0.1', port: 0 },
    proxyAddresses: ['127.0.0.1'],
    proxyPort: 0,
    broadcast: { address: '127.0.0.1', port: discovers.port },
    limiter,
  });
  await server.start();
  const stats = server.stats;
  const ports = server.ports();
  try {
    for (let i = 0; i < 50; i++) discovers.socket.send(requestBytes({ chaddr: mac(i), xid: i }), ports.dhcp, '127.0.0.1');
    await until(() => (stats.ignored.get('rate-limited-total') ?? 0) + discovers.received.length >= 50);
    assert.equal(discovers.received.length, 20);
    // edk2's boot-server request on 4011 and an iPXE DISCOVER, both after the burst.
    proxyClient.socket.send(
      requestBytes({ type: MessageType.request, ciaddr: '127.0.0.1', chaddr: mac(1000), xid: 7 }),
      ports.proxy,
      '127.0.0.1',
    );
    await until(() => proxyClient.received.length === 1);
    discovers.socket.send(requestBytes({ chaddr: mac(1001), xid: 8, userClass: 'iPXE' }), ports.dhcp, '127.0.0.1');
    await until(() => discovers.received.length === 21);
    assert.equal(stats.answers.get('uefi-pxe'), 21);
    assert.equal(stats.answers.get('ipxe'), 1);
  } finally {
    await server.shutdown(0);
    discovers.socket.close();
    proxyClient.socket.close();
  }
});

test('on its own thread: the same answers, records and counters; a bind failure is the same one-line BindError', async () => {
  const { createThreadedDhcpService } = await import('../../lib/dhcp/thread.js');
  const { BindError } = await import('../../lib/net/bind.js');
  const discovers = await udp();
  const records: string[] = [];
  const service = createThreadedDhcpService({
    policy: () => POLICY,
    log: (r) => records.push(`${r.message} ${r.answer}`),
    error: () => {},
    dhcp: { address: '127.0.0.1', port: 0 },
    proxyAddresses: ['127.0.0.1'],
    proxyPort: 0,
    broadcast: { address: '127.0.0.1', port: discovers.port },
  });
  await service.start();
  try {
    discovers.socket.send(requestBytes({ chaddr: mac(1), xid: 1 }), service.ports().dhcp, '127.0.0.1');
    discovers.socket.send(requestBytes({ chaddr: mac(2), xid: 2, vendorClass: 'MSFT 5.0' }), service.ports().dhcp, '127.0.0.1');
    await until(() => discovers.received.length === 1 && records.length === 2 && service.stats.ignored.get('not-pxe') === 1);
    assert.deepEqual(records.sort(), ['DISCOVER ignored', 'DISCOVER offer']);
    assert.equal(service.stats.answers.get('uefi-pxe'), 1);
    assert.match(service.banner()[0]?.text ?? '', /^proxyDHCP: answering .* on UDP \d+ and 127\.0\.0\.1:\d+/);
    // The same port again, exclusively: the 4011 socket cannot be bound twice.
    const again = createThreadedDhcpService({
      policy: () => POLICY,
      log: () => {},
      error: () => {},
      dhcp: { address: '127.0.0.1', port: 0 },
      proxyAddresses: ['127.0.0.1'],
      proxyPort: service.ports().proxy,
    });
    await assert.rejects(
      again.start(),
      (err: Error) => err instanceof BindError && /already in use/.test(err.message) && !err.message.includes('\n'),
    );
    await again.shutdown(0);
  } finally {
    await service.shutdown(0);
    discovers.socket.close();
  }
});
