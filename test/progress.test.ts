// Reading the client's progress from the kernel: address encoding, table parsing, a real socket.
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSendQueues, procAddress, socketProbe } from '../lib/http/progress.js';

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

test('a real socket: acknowledged bytes move only when the client reads', { skip: process.platform !== 'linux' && 'needs /proc/net/tcp' }, async () => {
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
    while (!serverSide) await sleep(10);
    await sleep(200); // the client's receive buffer fills, then nothing moves
    const probe = socketProbe(serverSide);
    assert.ok(probe);
    for (let i = 0; i < 3; i++) {
      assert.equal(probe.tookMore(), false, 'nothing was read (the first looks are only a baseline)');
      await sleep(300); // a fresh /proc snapshot
    }
    const queued = probe.unacknowledged?.();
    assert.ok(queued !== undefined && queued > 0 && queued <= serverSide.bytesWritten, `unacknowledged ${queued}`);
    let read = 0;
    client.on('data', (d: Buffer) => (read += d.length));
    client.resume();
    while (read < 4 << 20) await sleep(10);
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
