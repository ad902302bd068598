import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import { advertisedAddress } from '../../lib/dhcp/address.js';
import { decodePacket, MessageType, Opt, type DhcpPacket } from '../../lib/dhcp/packet.js';
import { RateLimiter, type PolicyConfig } from '../../lib/dhcp/policy.js';
import { createDhcpService, type DhcpOptions, type DhcpService } from '../../lib/dhcp/server.js';
import { BindError } from '../../lib/net/bind.js';
import { renderPrometheus } from '../../lib/observe/prometheus.js';
import type { DhcpRecord } from '../../lib/observe/log.js';
import { formatDhcp } from '../../lib/observe/log.js';
import { GUID, requestBytes } from '../helpers/dhcp.js';
import { eventually } from '../helpers/eventually.js';

const POLICY: PolicyConfig = {
  serverAddress: '127.0.0.1',
  httpPort: 8080,
  binaryFor: (fw) => (fw === 'bios' ? { name: 'ipxe/undionly.kpxe' } : { name: 'ipxe/snponly.efi' }),
};

/** A UDP client on 127.0.0.1 that collects what it receives. */
async function client(): Promise<{
  socket: Socket;
  port: number;
  received: { msg: Buffer; port: number }[];
  next(timeoutMs?: number): Promise<{ msg: Buffer; port: number } | undefined>;
}> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const received: { msg: Buffer; port: number }[] = [];
  let waiter: ((m: { msg: Buffer; port: number }) => void) | undefined;
  socket.on('message', (msg, rinfo) => {
    const m = { msg, port: rinfo.port };
    received.push(m);
    waiter?.(m);
  });
  return {
    socket,
    port: socket.address().port,
    received,
    next: (timeoutMs = 2000) =>
      new Promise((resolve) => {
        const t = setTimeout(() => resolve(undefined), timeoutMs);
        waiter = (m) => {
          clearTimeout(t);
          waiter = undefined;
          resolve(m);
        };
      }),
  };
}

/** A started DHCP service, with the ports it bound as the old server object had them. */
async function startDhcp(options: DhcpOptions): Promise<DhcpService & { dhcpPort: number; proxyPort: number; close(): Promise<void> }> {
  const service = createDhcpService(options);
  await service.start();
  return Object.assign(service, { dhcpPort: service.ports().dhcp, proxyPort: service.ports().proxy, close: () => service.shutdown(0) });
}

async function start(extra: Partial<DhcpOptions> & { broadcastPort: number }) {
  const logs: DhcpRecord[] = [];
  const errors: string[] = [];
  const { broadcastPort, ...rest } = extra;
  const server = await startDhcp({
    policy: () => POLICY,
    log: (r) => logs.push(r),
    error: (m) => errors.push(m),
    dhcp: { address: '127.0.0.1', port: 0 },
    proxyAddresses: ['127.0.0.1'],
    proxyPort: 0,
    broadcast: { address: '127.0.0.1', port: broadcastPort },
    ...rest,
  });
  return { server, logs, errors, stats: server.stats };
}

const send = (socket: Socket, bytes: Buffer, port: number) =>
  new Promise<void>((resolve, reject) => socket.send(bytes, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));

function packetOf(msg: Buffer): DhcpPacket {
  const r = decodePacket(msg);
  assert.equal(r.kind, 'packet');
  return (r as { packet: DhcpPacket }).packet;
}

test('DISCOVER on the 67 socket: an offer to the broadcast destination; REQUEST on 4011: an ACK from 4011 to the source', async () => {
  const c = await client();
  const { server, logs, stats } = await start({ broadcastPort: c.port });
  try {
    await send(c.socket, requestBytes({ guid: GUID, xid: 0x11 }), server.dhcpPort);
    const offer = await c.next();
    assert.ok(offer, 'offer received');
    assert.equal(offer.port, server.dhcpPort);
    const p = packetOf(offer.msg);
    assert.equal(p.options.get(Opt.messageType)?.[0], MessageType.offer);
    assert.equal(p.xid, 0x11);
    assert.equal(p.file, 'ipxe/snponly.efi');

    await send(c.socket, requestBytes({ type: MessageType.request, xid: 0x22, ciaddr: '127.0.0.1' }), server.proxyPort);
    const ack = await c.next();
    assert.ok(ack, 'ack received');
    assert.equal(ack.port, server.proxyPort, 'the ACK comes from port 4011');
    assert.equal(packetOf(ack.msg).options.get(Opt.messageType)?.[0], MessageType.ack);
    assert.equal(packetOf(ack.msg).xid, 0x22);

    assert.deepEqual(
      logs.map((r) => [r.answer, r.kind, r.message, r.mac, r.xid, r.arch]),
      [
        ['offer', 'uefi-pxe', 'DISCOVER', '52:54:00:12:34:56', '0x00000011', 7],
        ['ack', 'uefi-pxe', 'REQUEST', '52:54:00:12:34:56', '0x00000022', 7],
      ],
    );
    assert.equal(stats.answers.get('uefi-pxe'), 2);
    assert.match(
      formatDhcp(logs[0] as DhcpRecord, 'text'),
      /^\S+ 127\.0\.0\.1 DHCP \d+ DISCOVER 52:54:00:12:34:56 xid=0x00000011 arch=7 offer uefi-pxe "ipxe\/snponly\.efi"$/,
    );
    assert.equal(JSON.parse(formatDhcp(logs[0] as DhcpRecord, 'json')).protocol, 'dhcp');
  } finally {
    await server.close();
    c.socket.close();
  }
});

test('relayed DISCOVER: the offer goes to giaddr on the relay port', async () => {
  const c = await client();
  const relay = await client();
  const { server } = await start({ broadcastPort: c.port, relayPort: relay.port });
  try {
    await send(c.socket, requestBytes({ giaddr: '127.0.0.1' }), server.dhcpPort);
    const offer = await relay.next();
    assert.ok(offer);
    assert.equal(packetOf(offer.msg).giaddr, '127.0.0.1');
    assert.equal(c.received.length, 0);
  } finally {
    await server.close();
    c.socket.close();
    relay.socket.close();
  }
});

test('garbage and non-PXE packets: no reply, counted by reason, log lines bounded per second', async () => {
  const c = await client();
  const { server, logs, errors, stats } = await start({ broadcastPort: c.port, ignoredLogPerSecond: 5 });
  try {
    const garbage = Buffer.alloc(1500, 0x41);
    const ignoredCount = () => stats.ignored.keys().reduce((n, k) => n + stats.ignored.get(k), 0);
    // In batches: a loopback socket's receive buffer drops a burst of a few hundred datagrams.
    for (let i = 0; i < 200; i++) {
      await send(c.socket, garbage.subarray(0, i * 7), server.dhcpPort);
      if (i % 20 === 19) await eventually(() => ignoredCount() === i + 1);
    }
    await send(c.socket, requestBytes({ vendorClass: 'MSFT 5.0' }), server.dhcpPort);
    await send(c.socket, requestBytes({ type: MessageType.request }), server.dhcpPort);
    await eventually(() => ignoredCount() === 202);
    assert.equal(stats.ignored.get('malformed'), 200);
    assert.equal(stats.ignored.get('not-pxe'), 1);
    assert.equal(stats.ignored.get('wrong-message-type'), 1);
    assert.equal(c.received.length, 0);
    // 5 lines a second at most; the test may straddle a second or two.
    assert.ok(logs.length >= 5 && logs.length <= 15, `${logs.length} lines`);
    assert.equal(logs[0]?.reason, 'malformed');
    assert.equal(logs[0]?.mac, '-');
    assert.match(logs[0]?.detail ?? '', /truncated: 0 bytes/);
    const summarized = /\d+ more ignored packets in the last second were counted but not logged/;
    await eventually(() => errors.some((e) => summarized.test(e)), { timeoutMs: 3000 });
    const text = renderPrometheus(stats.families());
    assert.match(text, /^bootserve_dhcp_ignored_total\{reason="malformed"\} 200$/m);
    assert.match(text, /^bootserve_dhcp_answers_total\{client="bios-pxe"\} 0$/m);
    assert.match(text, /^# TYPE bootserve_dhcp_answers_total counter$/m);
  } finally {
    await server.close();
    c.socket.close();
  }
});

test('rate limited per MAC: retransmissions beyond the burst are counted, not answered', async () => {
  const c = await client();
  const limiter = new RateLimiter({ perClientBurst: 2, perClientPerSecond: 0.001, totalBurst: 100, totalPerSecond: 100, maxClients: 10 });
  const { server, stats } = await start({ broadcastPort: c.port, limiter });
  try {
    for (let i = 0; i < 5; i++) await send(c.socket, requestBytes({ arch: 0 }), server.dhcpPort);
    await eventually(() => (stats.ignored.get('rate-limited-client') ?? 0) === 3);
    await eventually(() => c.received.length === 2);
    assert.equal(stats.answers.get('bios-pxe'), 2);
  } finally {
    await server.close();
    c.socket.close();
  }
});

test('bind failures: a typed error naming the port, nothing left bound, a one-line message', async () => {
  const busy = createSocket('udp4');
  await new Promise<void>((resolve) => busy.bind(0, '127.0.0.1', resolve));
  const busyPort = busy.address().port;
  try {
    const opts = {
      policy: () => POLICY,
      log: () => {},
      error: () => {},
      dhcp: { address: '127.0.0.1', port: 0 },
      proxyAddresses: ['127.0.0.1'],
      proxyPort: busyPort,
    };
    const err = await startDhcp(opts).catch((e: unknown) => e);
    assert.ok(err instanceof BindError);
    assert.equal(err.code, 'EADDRINUSE');
    assert.equal(err.target.port, busyPort);
    // A DHCP server holding the DISCOVER port without SO_REUSEADDR (dhcpd, plain dnsmasq).
    const held = await startDhcp({ ...opts, dhcp: { address: '127.0.0.1', port: busyPort }, proxyPort: 0 }).catch((e: unknown) => e);
    assert.ok(held instanceof BindError);
    assert.equal(held.code, 'EADDRINUSE');
    assert.equal(held.target.port, busyPort);
    const notMine = await startDhcp({ ...opts, proxyAddresses: ['192.0.2.77'], proxyPort: 0 }).catch((e: unknown) => e);
    assert.ok(notMine instanceof BindError);
    assert.equal(notMine.code, 'EADDRNOTAVAIL');
    assert.match(notMine.message, /192\.0\.2\.77 is not an address of this host/);
  } finally {
    busy.close();
  }
  // The DHCP ports' wording (the table itself is tested with net/bind.ts).
  const holder = createSocket('udp4');
  await new Promise<void>((resolve) => holder.bind(0, '127.0.0.1', resolve));
  try {
    const taken = await startDhcp({
      policy: () => POLICY,
      log: () => {},
      error: () => {},
      dhcp: { address: '127.0.0.1', port: holder.address().port },
      proxyPort: 0,
    }).catch((e: unknown) => e);
    assert.match(String((taken as Error).message), /^proxyDHCP: UDP port \d+ on 127\.0\.0\.1 is already in use/);
    assert.ok(!(taken as Error).message.includes('\n'));
  } finally {
    holder.close();
  }
});

test('the advertised address: --host, else the only non-internal IPv4; refuse to guess on a multi-homed host', () => {
  const nic = (address: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4') =>
    ({ address, internal, family, netmask: '', mac: '', cidr: null }) as never;
  assert.deepEqual(advertisedAddress('198.18.0.2', {}), { kind: 'address', address: '198.18.0.2' });
  assert.equal(advertisedAddress('::1', {}).kind, 'refused');
  assert.equal(advertisedAddress('0.0.0.0', {}).kind, 'refused');
  assert.deepEqual(
    advertisedAddress(undefined, { lo: [nic('127.0.0.1', true)], eth0: [nic('198.18.0.2'), nic('fe80::1', false, 'IPv6')] }),
    { kind: 'address', address: '198.18.0.2' },
  );
  const multi = advertisedAddress(undefined, { eth0: [nic('198.18.0.2')], eth1: [nic('10.0.0.5')], lo: [nic('127.0.0.1', true)] });
  assert.equal(multi.kind, 'refused');
  assert.match((multi as { message: string }).message, /several IPv4 addresses \(198\.18\.0\.2, 10\.0\.0\.5\).*--host/);
  assert.match(
    (advertisedAddress(undefined, { lo: [nic('127.0.0.1', true)] }) as { message: string }).message,
    /no non-internal IPv4 address/,
  );
});
