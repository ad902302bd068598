// The TFTP transfer state machine under mock timers: no sockets, no files.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { decode, encodeAck, type Packet } from '../../lib/tftp/packet.js';
import { BlockSource, memoryReader } from '../../lib/tftp/source.js';
import { TftpTransfer, type TransferEnd, type TransferParams } from '../../lib/tftp/transfer.js';

const flush = () => new Promise((r) => setImmediate(r));

function harness(tc: TestContext, bytes: Buffer, params: Partial<TransferParams> = {}, shrinkAt?: number) {
  // Two harnesses in one test share the test's mock timers.
  try {
    tc.mock.timers.enable({ apis: ['setTimeout'] });
  } catch {
    // already on
  }
  let clock = 0;
  const sent: Packet[] = [];
  const t = new TftpTransfer(
    { blksize: 512, windowsize: 1, oack: [], retransmitMs: 1000, giveUpMs: 30_000, ...params },
    {
      source: new BlockSource(memoryReader(bytes, shrinkAt), params.blksize ?? 512, (params.blksize ?? 512) * (params.windowsize ?? 1)),
      send: (packet) => void sent.push(decode(Buffer.from(packet)) as Packet),
      now: () => clock,
    },
  );
  let end: TransferEnd | undefined;
  const started = t.start().then((e) => (end = e));
  const ack = async (block: number) => {
    t.receive(decode(encodeAck(block)) as Packet);
    await flush();
  };
  const tick = async (ms: number) => {
    clock += ms;
    tc.mock.timers.tick(ms);
    await flush();
  };
  const take = () => sent.splice(0);
  const blocks = (packets: Packet[]) => packets.map((p) => (p.op === 'data' ? p.block : p.op));
  return { t, ack, tick, take, blocks, ended: () => end, started };
}

test('no options: DATA 1 first and alone, lockstep to a short last block', async (t) => {
  const h = harness(t, Buffer.alloc(1300, 7));
  await flush();
  assert.deepEqual(h.blocks(h.take()), [1], 'one packet before any ACK');
  await h.ack(1);
  assert.deepEqual(h.blocks(h.take()), [2]);
  await h.ack(2);
  const last = h.take();
  assert.deepEqual(h.blocks(last), [3]);
  assert.equal(last[0]?.op === 'data' && last[0].data.length, 276);
  await h.ack(3);
  assert.deepEqual(h.ended(), { outcome: 'complete', bytesSent: 1300, retransmits: 0 });
});

test('a size that is a multiple of blksize ends with an empty block; an empty file is one empty block', async (t) => {
  const h = harness(t, Buffer.alloc(1024), { windowsize: 4, oack: [['windowsize', '4']] });
  await flush();
  assert.deepEqual(h.blocks(h.take()), ['oack']);
  await h.ack(0);
  const window = h.take();
  assert.deepEqual(h.blocks(window), [1, 2, 3]);
  assert.equal(window[2]?.op === 'data' && window[2].data.length, 0);
  await h.ack(3);
  assert.equal(h.ended()?.outcome, 'complete');

  const empty = harness(t, Buffer.alloc(0));
  await flush();
  const only = empty.take();
  assert.deepEqual(empty.blocks(only), [1]);
  assert.equal(only[0]?.op === 'data' && only[0].data.length, 0);
  await empty.ack(1);
  assert.equal(empty.ended()?.outcome, 'complete');
});

test('after an OACK nothing of the file goes out before ACK 0; then whole windows', async (t) => {
  const h = harness(t, Buffer.alloc(10 * 512), { windowsize: 4, oack: [['windowsize', '4']] });
  await flush();
  assert.deepEqual(h.blocks(h.take()), ['oack']);
  await h.ack(1); // not ACK 0: ignored
  await h.ack(5);
  assert.deepEqual(h.take(), []);
  await h.ack(0);
  assert.deepEqual(h.blocks(h.take()), [1, 2, 3, 4]);
  await h.ack(4);
  assert.deepEqual(h.blocks(h.take()), [5, 6, 7, 8]);
  // The client saw a gap after 6: it acknowledges 6, and 7 on go again with new blocks behind.
  await h.ack(6);
  assert.deepEqual(h.blocks(h.take()), [7, 8, 9, 10]);
  await h.ack(10);
  assert.deepEqual(h.blocks(h.take()), [11]);
  await h.ack(11);
  assert.equal(h.ended()?.outcome, 'complete');
});

test('a lost ACK: the window goes again on our timer, 1 s then doubling; a duplicate ACK sends nothing', async (t) => {
  const h = harness(t, Buffer.alloc(5000));
  await flush();
  assert.deepEqual(h.blocks(h.take()), [1]);
  await h.ack(1);
  assert.deepEqual(h.blocks(h.take()), [2]);
  await h.ack(1); // duplicate: the Sorcerer's Apprentice would resend 2 here
  await h.ack(1);
  assert.deepEqual(h.take(), []);
  await h.tick(999);
  assert.deepEqual(h.take(), []);
  await h.tick(1);
  assert.deepEqual(h.blocks(h.take()), [2], 'resent at 1 s');
  await h.tick(1999);
  assert.deepEqual(h.take(), []);
  await h.tick(1);
  assert.deepEqual(h.blocks(h.take()), [2], 'then after 2 s more');
  await h.ack(2);
  assert.deepEqual(h.blocks(h.take()), [3]);
  await h.tick(1000);
  assert.deepEqual(h.blocks(h.take()), [3], 'progress resets the interval');
  assert.equal(h.t.retransmits, 3);
});

test('a client that stops acknowledging is given up at giveUpMs, with a bounded number of resends', async (t) => {
  const h = harness(t, Buffer.alloc(5000), { giveUpMs: 30_000 });
  await flush();
  h.take();
  await h.ack(1);
  h.take();
  for (let ms = 0; ms < 29_000; ms += 1000) await h.tick(1000);
  assert.equal(h.ended(), undefined);
  await h.tick(1000);
  assert.deepEqual(h.ended(), { outcome: 'stalled', bytesSent: 512, retransmits: 4 });
  assert.equal(h.take().length, 4, 'resent at 1, 3, 7, 15 s');
  await h.tick(60_000);
  assert.deepEqual(h.take(), [], 'nothing after the end');
});

test('a client that never acknowledged anything is given up after 7 s: 3 packets in all', async (t) => {
  const h = harness(t, Buffer.alloc(5000), { giveUpMs: 30_000 });
  await flush();
  for (let ms = 0; ms < 6_000; ms += 1000) await h.tick(1000);
  assert.equal(h.ended(), undefined);
  await h.tick(1000);
  assert.equal(h.ended()?.outcome, 'stalled');
  assert.deepEqual(h.blocks(h.take()), [1, 1, 1], 'DATA 1 at 0, 1 and 3 s');
});

test("an ERROR from the client ends the transfer silently (edk2's ERROR 8 after its tsize probe)", async (t) => {
  const h = harness(t, Buffer.alloc(5000), { oack: [['tsize', '5000']] });
  await flush();
  assert.deepEqual(h.blocks(h.take()), ['oack']);
  h.t.receive({ op: 'error', code: 8, message: 'size probe' });
  await flush();
  assert.deepEqual(h.ended(), { outcome: 'client-gone', bytesSent: 0, retransmits: 0, clientError: 'ERROR 8: size probe' });
  await h.tick(5000);
  assert.deepEqual(h.take(), []);
});

test('block numbers wrap from 65535 to 0', async (t) => {
  const size = 70_000 * 8 + 3;
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  const h = harness(t, bytes, { blksize: 8, windowsize: 64, oack: [['blksize', '8'], ['windowsize', '64']] });
  await flush();
  h.take();
  const received: Buffer[] = [];
  let acked = 0;
  await h.ack(0);
  for (let rounds = 0; rounds < 2000 && !h.ended(); rounds++) {
    const window = h.take();
    for (const p of window) {
      assert.equal(p.op, 'data');
      if (p.op !== 'data') continue;
      assert.equal(p.block, (acked + 1) & 0xffff);
      received.push(Buffer.from(p.data));
      acked++;
    }
    await h.ack(acked & 0xffff);
  }
  assert.equal(h.ended()?.outcome, 'complete');
  assert.equal(acked, 70_001);
  assert.ok(Buffer.concat(received).equals(bytes));
});

test('a file that shrinks mid-transfer ends with an ERROR, as a read error', async (t) => {
  const h = harness(t, Buffer.alloc(5000), {}, 1024);
  await flush();
  await h.ack(1);
  await h.ack(2);
  const last = h.take().pop();
  assert.equal(last?.op, 'error');
  assert.equal(h.ended()?.outcome, 'read-error');
  assert.equal(h.ended()?.bytesSent, 1024);
});

test('abort (shutdown) tells the client and records the outcome', async (t) => {
  const h = harness(t, Buffer.alloc(5000));
  await flush();
  h.take();
  h.t.abort('shutdown', 'server shutting down');
  await flush();
  assert.equal(h.take()[0]?.op, 'error');
  assert.equal(h.ended()?.outcome, 'shutdown');
});
