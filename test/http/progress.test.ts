// Reading the client's progress from the kernel: address encoding, table parsing, a real socket.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AckWatcher, parseSendQueues, procAddress } from '../../lib/http/progress.js';
import { eventually } from '../helpers/eventually.js';

const watcher = new AckWatcher();
const socketProbe = (socket: import('node:net').Socket) => watcher.probe(socket);

test('addresses are spelled as /proc/net/tcp{,6} spells them', { skip: endianness() !== 'LE' && 'little-endian layout only' }, () => {
  assert.equal(procAddress('127.0.0.1', 8080, false), '0100007F:1F90');
  assert.equal(procAddress('192.168.1.10', 80, false), '0A01A8C0:0050');
  assert.equal(procAddress('127.0.0.1', 8080, true), '0000000000000000FFFF00000100007F:1F90');
  assert.equal(procAddress('::ffff:127.0.0.1', 1, true), '0000000000000000FFFF00000100007F:0001');
  assert.equal(procAddress('::1', 443, true), '00000000000000000000000001000000:01BB');
  assert.equal(procAddress('2001:db8::1', 22, true), 'B80D0120000000000000000001000000:0016');
  assert.equal(procAddress('fe80::1%eth0', 22, true), '000080FE000000000000000001000000:0016');
});

test('send queues are parsed per connection', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:1F90 0100007F:C350 01 003D7E01:00000000 01:00000014 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1',
    '',
  ].join('\n');
  const queues = parseSendQueues(table);
  assert.equal(queues.get('0100007F:1F90 0100007F:C350'), 0x3d7e01);
  assert.equal(queues.get('0100007F:1F90 00000000:0000'), 0);
  assert.equal(queues.size, 2);
});

test('a real socket: acknowledged bytes move only when the client reads',
  { skip: process.platform !== 'linux' && 'needs /proc/net/tcp' }, async () => {
  let serverSide: Socket | undefined;
  const server = createServer((s) => {
    serverSide = s;
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 16 && s.write(chunk); i++);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  client.pause();
  try {
    const side = await eventually(() => serverSide ?? false, { what: 'the connection' });
    // Observation windows, not waits for an event: the client's buffers fill, then nothing moves
    // between snapshots (/proc is read at most every 250 ms).
    await sleep(200);
    const probe = socketProbe(side);
    assert.ok(probe);
    for (let i = 0; i < 3; i++) {
      assert.equal(probe.tookMore(), false, 'nothing was read (the first looks are only a baseline)');
      await sleep(300); // a fresh /proc snapshot
    }
    const queued = probe.unacknowledged?.();
    assert.ok(queued !== undefined && queued > 0 && queued <= side.bytesWritten, `unacknowledged ${queued}`);
    let read = 0;
    client.on('data', (d: Buffer) => (read += d.length));
    client.resume();
    // Megabytes, or all there is: what the server wrote depends on how much the kernel took at once.
    await eventually(() => read >= Math.min(4 << 20, side.bytesWritten), { timeoutMs: 10_000 });
    client.pause();
    await sleep(300);
    assert.equal(probe.tookMore(), true, 'the client read megabytes');
    const later = probe.unacknowledged?.();
    assert.ok(later !== undefined && later < queued, `unacknowledged ${later} after reading, ${queued} before`);
  } finally {
    client.destroy();
    server.close();
  }
});

/** The receive queue /proc/net/tcp lists for this end of a connection (bytes not yet read). */
function receiveQueue(socket: Socket): number {
  const key = `${procAddress(socket.localAddress as string, socket.localPort as number, false)} ` +
    `${procAddress(socket.remoteAddress as string, socket.remotePort as number, false)}`;
  const row = readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .find((line) => line.includes(key));
  assert.ok(row, `no /proc/net/tcp row for ${key}`);
  return parseInt((row.trim().split(/\s+/)[4] as string).split(':')[1] as string, 16);
}

test('on this Node, the socket internals the probe reads add up to what the client received',
  { skip: process.platform !== 'linux' && 'needs /proc/net/tcp' }, async () => {
  // The probe counts acknowledged bytes as the bytes the kernel took from Node (`_bytesDispatched`
  // less libuv's `writeQueueSize`) less the kernel's send queue. A Node release that drops or
  // redefines either internal must fail here, not cut slow clients in the field: so check the
  // figure against the other end, whose kernel has received exactly what was acknowledged.
  let serverSide: Socket | undefined;
  const server = createServer((s) => {
    serverSide = s;
    s.on('error', () => {}); // the client's reset at the end
    s.write(Buffer.alloc(3 << 20)); // one large write: libuv keeps what the kernel refused
    s.cork();
    for (let i = 0; i < 8; i++) s.write(Buffer.alloc(100_000)); // one writev
    s.uncork();
    for (let i = 0; i < 64; i++) s.write(Buffer.alloc(10_000)); // waiting in the stream's buffer
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  client.pause();
  try {
    const side = await eventually(() => serverSide ?? false, { what: 'the connection' });
    const internals = side as unknown as { _bytesDispatched?: unknown; _handle?: { writeQueueSize?: unknown } };
    assert.equal(typeof internals._bytesDispatched, 'number', '_bytesDispatched');
    assert.equal(typeof internals._handle?.writeQueueSize, 'number', '_handle.writeQueueSize');
    const probe = socketProbe(side);
    const unacknowledged = probe?.unacknowledged;
    assert.ok(unacknowledged);
    let read = 0;
    client.on('data', (d: Buffer) => (read += d.length));
    for (const readUpTo of [0, 1 << 20, 3 << 20, 4 << 20]) {
      if (read < readUpTo) {
        client.resume();
        await eventually(() => read >= readUpTo, { intervalMs: 5 });
        client.pause();
      }
      // Once the last acknowledgements are in and the /proc snapshot is fresh.
      await eventually(() => {
        const received: number = client.bytesRead + receiveQueue(client);
        const acknowledged: number = side.bytesWritten - (unacknowledged() as number);
        assert.equal(acknowledged, received, `after reading ${read}: acknowledged ${acknowledged}, received ${received}`);
      }, { timeoutMs: 2000, intervalMs: 50 });
    }
    probe?.release?.();
  } finally {
    client.destroy();
    server.close();
  }
});

test('without those internals there is no probe: the guard goes by drain',
  { skip: process.platform !== 'linux' && 'needs /proc/net/tcp' }, async () => {
  const server = createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  try {
    await new Promise((r) => client.once('connect', r));
    assert.ok(socketProbe(client), 'a probe while Node exposes them');
    Object.defineProperty(client, '_bytesDispatched', { value: undefined });
    assert.equal(socketProbe(client), undefined);
  } finally {
    client.destroy();
    server.close();
  }
});
