// The shared networking parts (lib/net/) and the service contract every service meets.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { buildApp } from '../../lib/app.js';
import { DEFAULTS, type Config } from '../../lib/cli.js';
import { BufferPool } from '../../lib/http/readbuffers.js';
import { displayAddress, hostLiteral, urlsFor } from '../../lib/net/addresses.js';
import { BindError, bindUdp, listenTcp } from '../../lib/net/bind.js';
import { AddressCounter } from '../../lib/net/counter.js';
import { drain, InFlight, within } from '../../lib/net/shutdown.js';
import { tempRoot } from '../helpers/temp.js';

const quiet = { access: () => {}, dhcp: () => {}, error: () => {}, info: () => {} };

test('addresses: IPv4-mapped shown as IPv4, IPv6 bracketed, one URL per usable address', () => {
  assert.equal(displayAddress('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(displayAddress('2001:db8::1'), '2001:db8::1');
  assert.equal(hostLiteral('2001:db8::1'), '[2001:db8::1]');
  assert.equal(hostLiteral('192.0.2.7'), '192.0.2.7');
  assert.deepEqual(urlsFor({ address: '::1', family: 'IPv6', port: 80 }), ['http://[::1]:80/']);
  const nic = (address: string, family: 'IPv4' | 'IPv6', internal: boolean) =>
    ({ address, family, internal, netmask: '', mac: '', cidr: null, name: 'x' }) as never;
  const list = [
    nic('127.0.0.1', 'IPv4', true),
    nic('198.18.0.2', 'IPv4', false),
    nic('fe80::1', 'IPv6', false),
    nic('2001:db8::2', 'IPv6', false),
  ];
  assert.deepEqual(
    urlsFor({ address: '0.0.0.0', family: 'IPv4', port: 8080 }, () => list),
    ['http://198.18.0.2:8080/'],
  );
  assert.deepEqual(
    urlsFor({ address: '::', family: 'IPv6', port: 8080 }, () => list),
    ['http://198.18.0.2:8080/', 'http://[2001:db8::2]:8080/'],
  );
  assert.deepEqual(
    urlsFor({ address: '::', family: 'IPv6', port: 8080 }, () => undefined),
    ['http://<this-host>:8080/'],
  );
});

test('the per-address counter: a cap per address, released to zero and forgotten', () => {
  const c = new AddressCounter();
  assert.ok(c.acquire('a', 2));
  assert.ok(c.acquire('a', 2));
  assert.equal(c.acquire('a', 2), false);
  assert.ok(c.acquire('b', 2));
  c.release('a');
  assert.equal(c.get('a'), 1);
  c.release('a');
  c.release('b');
  assert.equal(c.size, 0);
});

test('binding: a busy TCP or UDP port is one BindError line naming the service, port and flag', async () => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as { port: number }).port;
  try {
    const err = await listenTcp(createServer(), { service: 'HTTP', protocol: 'TCP', address: '127.0.0.1', port, portFlag: '--port' }).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof BindError);
    assert.equal(err.message, `HTTP: port ${port} is already in use (127.0.0.1:${port}); choose another with --port`);
    const udp = createSocket('udp4');
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
    const udpErr = await bindUdp(udp, { service: 'TFTP', protocol: 'UDP', address: '127.0.0.1', port: taken.address().port }).catch(
      (e: unknown) => e,
    );
    taken.close();
    assert.ok(udpErr instanceof BindError && udpErr.code === 'EADDRINUSE');
    const bad = await bindUdp(createSocket('udp4'), { service: 'TFTP', protocol: 'UDP', address: '192.0.2.77', port: 0 }).catch(
      (e: unknown) => e,
    );
    assert.match(
      (bad as Error).message,
      /^TFTP: cannot listen on UDP port 0 on 192\.0\.2\.77: 192\.0\.2\.77 is not an address of this host \(--host\)$/,
    );
  } finally {
    holder.close();
  }
});

test('bounded waits: within() gives up at its bound; drain waits for the work, then cuts the rest', async () => {
  assert.equal(await within(new Promise(() => {}), 20), false);
  assert.equal(await within(Promise.resolve(), 1000), true);
  const inFlight = new InFlight();
  let finish!: () => void;
  void inFlight.track(new Promise<void>((r) => (finish = r)));
  assert.equal(inFlight.size, 1);
  let cut = 0;
  const started = Date.now();
  await drain(inFlight, 30, () => (cut++, finish()), 1000);
  assert.equal(cut, 1, 'cut once, after the grace');
  assert.ok(Date.now() - started >= 25);
  assert.equal(inFlight.size, 0);
  await drain(inFlight, 10_000, () => cut++, 10_000); // nothing running: returns at once, still cuts idle ones
  assert.equal(cut, 2);
});

test('recycled reads: a chunk that is not the buffer we filled is caught, and reads turn plain', () => {
  const pool = new BufferPool();
  assert.equal(pool.verify(Buffer.alloc(100)), true, 'small reads are plain anyway');
  assert.equal(pool.verify(Buffer.alloc(32 * 1024)), false, 'a stream pushing its own buffer');
  assert.equal(pool.verify(Buffer.alloc(32 * 1024)), true, 'from then on reads are plain');
});

test('every service meets the contract: start, banner, metrics, status, bounded shutdown', async (t) => {
  const root = tempRoot({ 'a.txt': 'a' }, t);
  const config: Config = {
    ...DEFAULTS,
    root,
    quiet: true,
    host: '127.0.0.1',
    port: 0,
    tftp: true,
    tftpPort: 0,
    adminListen: '127.0.0.1:0',
  };
  const app = buildApp({ config, root, version: 't', logger: quiet });
  try {
    await app.start();
    assert.deepEqual(app.services.map((s) => s.name), ['http', 'admin', 'tftp']);
    for (const s of app.services) {
      assert.ok(s.banner().length > 0, `${s.name} has banner lines`);
      assert.ok(Array.isArray(s.metrics()));
      assert.equal(typeof s.status(), 'object');
    }
    assert.match(app.banner().at(-1)?.text ?? '', /^iPXE: chain http:\/\/127\.0\.0\.1:\d+\/boot\.ipxe$/);
  } finally {
    const started = Date.now();
    await app.shutdown(0);
    assert.ok(Date.now() - started < 3000, 'bounded');
  }
});

test('the --admin-listen server checks methods and keeps the main server\'s timeouts', async (t) => {
  const root = tempRoot({}, t);
  const config: Config = { ...DEFAULTS, root, quiet: true, host: '127.0.0.1', port: 0, adminListen: '127.0.0.1:0', headerTimeoutMs: 500 };
  const app = buildApp({ config, root, version: 't', logger: quiet });
  await app.start();
  try {
    const port = app.admin?.address().port as number;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/-/status', agent: false },
        (res) => (res.resume(), resolve(res.statusCode ?? 0)),
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 405);
    // A request whose headers never end is cut at the header timeout (408), not held.
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('GET /-/status HTTP/1.1\r\nHost: x\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => {});
      setTimeout(() => s.destroy(), 5000).unref();
    });
    assert.match(answer, /^HTTP\/1\.1 408/);
  } finally {
    await app.shutdown(0);
  }
});
