// Bounded resources: connection caps, header and keep-alive deadlines, graceful shutdown.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { eventually } from '../helpers/eventually.js';
import { fetch, raw, startServer } from '../helpers/server.js';

function open(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.on('error', reject);
  });
}

function closedAfter(socket: Socket): Promise<{ ms: number; data: string }> {
  const start = Date.now();
  let data = '';
  socket.on('data', (d) => (data += d.toString('latin1')));
  return new Promise((resolve) => socket.on('close', () => resolve({ ms: Date.now() - start, data })));
}

test('beyond --max-connections: 503 with Retry-After, closed, counted', async () => {
  const s = await startServer({ maxConnections: 2, files: { 'boot.ipxe': '#!ipxe\n' } });
  try {
    const held = [await open(s.port), await open(s.port)];
    await eventually(() => assert.equal(s.stats.connections, 2));
    const reply = await raw(s.port, 'GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(reply, /Retry-After: 5\r\n/);
    assert.equal(s.stats.rejected.get('max-connections'), 1);
    for (const socket of held) socket.destroy();
    await eventually(() => assert.equal(s.stats.connections, 0));
    assert.equal((await fetch(`${s.url}/boot.ipxe`)).status, 200);
  } finally {
    await s.close();
  }
});

test('beyond --max-connections-per-ip: 503 for that address only', async () => {
  const s = await startServer({ maxConnectionsPerIp: 1, files: { 'boot.ipxe': '#!ipxe\n' } });
  try {
    const held = await open(s.port);
    await eventually(() => assert.equal(s.stats.connections, 1));
    assert.match(await raw(s.port, 'GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 503 [^]*\r\nRetry-After: 5\r\n/);
    assert.equal(s.stats.rejected.get('max-connections-per-ip'), 1);
    // Another loopback address is another client (Linux routes all of 127/8 to lo).
    const other = await open(s.port, '127.0.0.2');
    const answer = closedAfter(other);
    other.write('GET /boot.ipxe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match((await answer).data, /^HTTP\/1\.1 200 OK/);
    held.destroy();
  } finally {
    await s.close();
  }
});

test('a slowloris that trickles header bytes is cut at --header-timeout, promptly', async () => {
  const s = await startServer({ headerTimeoutMs: 500 });
  try {
    const socket = await open(s.port);
    const closed = closedAfter(socket);
    const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
    socket.write('GET / HTTP/1.1\r\n');
    const { ms, data } = await closed;
    clearInterval(drip);
    assert.ok(ms >= 450 && ms < 1500, `closed after ${ms} ms`);
    assert.match(data, /^HTTP\/1\.1 408/);
  } finally {
    await s.close();
  }
});

test('idle keep-alive connections close after --keepalive-timeout', async () => {
  const s = await startServer({ keepAliveTimeoutMs: 300, files: { 'boot.ipxe': '#!ipxe\n' } });
  try {
    const socket = await open(s.port);
    const closed = closedAfter(socket);
    socket.write('GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n');
    const { ms, data } = await closed;
    assert.match(data, /Keep-Alive: timeout=0|Keep-Alive: timeout=\d+/);
    assert.match(data, /#!ipxe\n$/);
    assert.ok(ms >= 250 && ms < 2000, `closed after ${ms} ms`);
  } finally {
    await s.close();
  }
});

test('shutdown lets an in-flight transfer finish within the grace, then stops', async (t) => {
  const body = randomBytes(4 * 1024 * 1024);
  const s = await startServer({ files: { 'a.img': body } });
  t.after(() => s.close());
  const socket = await open(s.port);
  socket.pause();
  socket.write('GET /a.img HTTP/1.1\r\nHost: x\r\n\r\n');
  await transferStarted(s);
  const done = s.server.shutdown(5000);
  // New connections are refused once shutdown begins.
  await assert.rejects(open(s.port));
  // The in-flight transfer still completes.
  let got = '';
  socket.on('data', (d) => (got += d.toString('latin1').slice(0, 200)));
  socket.resume();
  await done;
  assert.match(got, /^HTTP\/1\.1 200 OK/);
  await eventually(() => {
    assert.equal(s.logs.find((l) => l.path === '/a.img')?.outcome, 'complete');
    assert.equal(s.stats.connections, 0);
  });
});

test('shutdown destroys what is still running when the grace runs out', async (t) => {
  const s = await startServer({ files: { 'a.img': randomBytes(32 * 1024 * 1024) } });
  t.after(() => s.close());
  const socket = await open(s.port);
  socket.pause();
  socket.on('error', () => {});
  socket.write('GET /a.img HTTP/1.1\r\nHost: x\r\n\r\n');
  await transferStarted(s);
  const started = Date.now();
  await s.server.shutdown(300);
  const ms = Date.now() - started;
  assert.ok(ms >= 250 && ms < 2000, `took ${ms} ms`);
  await eventually(() => assert.equal(s.logs.find((l) => l.path === '/a.img')?.outcome, 'shutdown'));
  socket.destroy();
});

/** Wait (bounded) until the server is sending a response. */
async function transferStarted(s: { transfers: { active: Map<number, unknown> } }): Promise<void> {
  await eventually(() => s.transfers.active.size > 0, { what: 'the transfer to start' });
}
