// The transfer loop against a fake socket, with mocked timers: no real waiting.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, mock, test } from 'node:test';
import {
  sendBody,
  TransferEngine,
  UNPROVEN_IN_FLIGHT,
  type ProgressProbe,
  type Sink,
  type TransferOptions,
  type TransferResult,
} from '../../lib/http/transfer.js';
import { tempDir } from '../helpers/temp.js';

const WINDOW = 10_000;
const SIZE = 1024 * 1024;
const file = join(tempDir({ after }, 'bootserve-transfer-'), 'artifact');
writeFileSync(file, Buffer.alloc(SIZE, 7));

/** A socket stand-in: accepts everything, or pushes back until the test drains it. */
class FakeSink extends EventEmitter implements Sink {
  destroyed = false;
  received = 0;
  writes = 0;
  sizes: number[] = [];
  ended = false;
  constructor(private accepting: boolean) {
    super();
  }
  write(chunk: Buffer, written?: () => void): boolean {
    this.received += chunk.length;
    this.writes++;
    this.sizes.push(chunk.length);
    if (written) setImmediate(written);
    return this.accepting;
  }
  end(): void {
    this.ended = true;
    if (this.accepting) setImmediate(() => this.emit('finish'));
  }
  /** The client took what was queued. */
  drain(): void {
    if (this.ended) this.emit('finish');
    else this.emit('drain');
  }
}

/** A descriptor the transfer holds alone: its release closes it. */
const owned = (fd: number) => ({ fd, release: () => closeSync(fd) });
const isClosed = (fd: number) => {
  try {
    fstatSync(fd);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EBADF';
  }
};
/** Let real file reads (thread pool) and immediates run while timers stay frozen. */
const settle = async (rounds = 20) => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};
/** Wait (in real time, timers frozen) until the loop has written at least `n` times. */
const writesReach = async (sink: FakeSink, n: number) => {
  while (sink.writes < n) await settle(1);
};

function options(extra: Partial<TransferOptions> = {}): TransferOptions & { aborts: number } {
  const o = {
    stallMs: WINDOW,
    chunkSize: 64 * 1024,
    startChunkSize: 64 * 1024,
    aborts: 0,
    abort: () => o.aborts++,
    now: () => Date.now(),
    ...extra,
  };
  return o;
}

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
afterEach(() => mock.timers.reset());

test('complete: a receiver that keeps up gets every byte, and the file is closed', async () => {
  const sink = new FakeSink(true);
  const fd = openSync(file, 'r');
  const o = options();
  const result = await sendBody(sink, owned(fd), [Buffer.from('head'), { start: 0, end: SIZE - 1 }, Buffer.from('tail')], o);
  assert.deepEqual(result, { outcome: 'complete', bytesSent: SIZE + 8 });
  assert.equal(sink.received, SIZE + 8);
  assert.equal(o.aborts, 0);
  assert.ok(isClosed(fd));
});

test('client-gone: the receiver closes mid-transfer; the file is closed, no reset', async () => {
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  const o = options();
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o);
  await writesReach(sink, 1);
  sink.destroyed = true;
  sink.emit('close');
  const result = await done;
  assert.equal(result.outcome, 'client-gone');
  assert.equal(o.aborts, 0);
  assert.ok(isClosed(fd));
});

test('client-gone at once when the socket is already destroyed', async () => {
  const sink = new FakeSink(true);
  sink.destroyed = true;
  const fd = openSync(file, 'r');
  assert.equal((await sendBody(sink, owned(fd), [{ start: 0, end: 9 }], options())).outcome, 'client-gone');
  assert.ok(isClosed(fd));
});

test('stalled: a receiver that never drains is aborted exactly at the window', async () => {
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  const o = options();
  let result = undefined as TransferResult | undefined;
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o).then((r) => (result = r));
  await writesReach(sink, 1);
  mock.timers.tick(WINDOW - 1);
  await settle();
  assert.equal(result, undefined, 'not aborted before the window');
  assert.equal(o.aborts, 0);
  mock.timers.tick(1);
  assert.equal(o.aborts, 1, 'aborted at the window');
  const r = await done;
  assert.equal(r.outcome, 'stalled');
  assert.equal(r.bytesSent, 64 * 1024);
  assert.ok(isClosed(fd));
});

test('progress re-arms the timer: draining a little every window minus epsilon is never cut', async () => {
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  const o = options();
  let result = undefined as TransferResult | undefined;
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o).then((r) => (result = r));
  // 16 chunks of 64 KiB, one per almost-window: far longer than one window in total.
  for (let i = 1; i <= 16; i++) {
    await writesReach(sink, i);
    mock.timers.tick(WINDOW - 5);
    await settle();
    assert.equal(result, undefined, `cut after ${i} slow chunks`);
    sink.drain();
  }
  // The read stream may have ended (and end() been called) before the last drain.
  while (!sink.ended) await settle(1);
  sink.drain(); // flushes the end, if still queued
  assert.equal((await done).outcome, 'complete');
  assert.equal(o.aborts, 0);
  assert.ok(isClosed(fd));
});

test('the tail after the last read is guarded too', async () => {
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  const o = options();
  let result = undefined as TransferResult | undefined;
  const done = sendBody(sink, owned(fd), [Buffer.from('only literal bytes')], o).then((r) => (result = r));
  await settle();
  assert.equal(result, undefined);
  mock.timers.tick(WINDOW);
  assert.equal((await done).outcome, 'stalled');
  assert.ok(isClosed(fd));
});

test('a probe that sees acknowledged bytes keeps a drain-less transfer alive; its silence cuts it', async () => {
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  let acked = true;
  const o = options({ probe: { tookMore: () => acked } });
  let result = undefined as TransferResult | undefined;
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o).then((r) => (result = r));
  await writesReach(sink, 1);
  for (let t = 0; t < 3 * WINDOW; t += WINDOW / 8) {
    mock.timers.tick(WINDOW / 8);
    await settle();
  }
  assert.equal(result, undefined, 'cut although the client acknowledged bytes');
  acked = false;
  for (let t = 0; t < WINDOW - WINDOW / 8; t += WINDOW / 8) {
    mock.timers.tick(WINDOW / 8);
    await settle();
  }
  assert.equal(result, undefined, 'cut before a whole window without progress');
  mock.timers.tick(WINDOW / 8);
  assert.equal((await done).outcome, 'stalled');
  assert.ok(isClosed(fd));
});

test('read-error: a file shorter than promised aborts instead of sending a short body', async () => {
  const sink = new FakeSink(true);
  const fd = openSync(file, 'r');
  const o = options();
  const result = await sendBody(sink, owned(fd), [{ start: 0, end: SIZE + 99 }], o);
  assert.equal(result.outcome, 'read-error');
  assert.equal(o.aborts, 1);
  assert.ok(isClosed(fd));
});

test('read-error: a descriptor that cannot be read', async () => {
  const sink = new FakeSink(true);
  const o = options();
  const dirFd = openSync(tmpdir(), 'r');
  const result = await sendBody(sink, owned(dirFd), [{ start: 0, end: 9 }], o);
  assert.equal(result.outcome, 'read-error');
  assert.ok(isClosed(dirFd));
});

test('a zero window disables the guard', async () => {
  const sink = new FakeSink(false);
  const o = options({ stallMs: 0 });
  let result = undefined as TransferResult | undefined;
  const done = sendBody(sink, undefined, [Buffer.from('x')], o).then((r) => (result = r));
  mock.timers.tick(10 * WINDOW);
  await settle();
  assert.equal(result, undefined);
  sink.drain(); // takes the byte
  sink.drain(); // takes the end
  assert.equal((await done).outcome, 'complete');
});

test('reads start small and grow once the transfer has sent more than growAfter', async () => {
  const sink = new FakeSink(true);
  const fd = openSync(file, 'r');
  const o = options({ chunkSize: 256 * 1024, startChunkSize: 32 * 1024, growAfter: 128 * 1024 });
  const result = await sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o);
  assert.equal(result.outcome, 'complete');
  assert.equal(sink.received, SIZE);
  assert.deepEqual(sink.sizes.slice(0, 4), [32 * 1024, 32 * 1024, 32 * 1024, 32 * 1024]);
  assert.ok(sink.sizes.includes(256 * 1024), sink.sizes.join());
  assert.ok(Math.max(...sink.sizes) <= 256 * 1024);
  assert.ok(isClosed(fd));
});

test('in a crowd of proven downloads (a boot storm), grown reads stay at 64 KiB; the count is given back', async () => {
  const engine = new TransferEngine();
  engine.grownReaders = 200; // as if 200 downloads were streaming now
  engine.largeReaders = 4;
  const sink = new FakeSink(true);
  const fd = openSync(file, 'r');
  const { chunkSize: _unused, ...rest } = options({ startChunkSize: 32 * 1024, growAfter: 128 * 1024 });
  const result = await sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], { ...rest, engine });
  assert.equal(result.outcome, 'complete');
  assert.ok(sink.sizes.includes(64 * 1024), sink.sizes.join());
  assert.ok(Math.max(...sink.sizes) <= 64 * 1024, sink.sizes.join());
  assert.equal(engine.grownReaders, 200, 'released once the transfer ended');
});

test('a drain after a long wait is not progress unless the probe sees acknowledged bytes', async () => {
  // The kernel finding memory for a silent client's socket looks like a drain.
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  const o = options({ probe: { tookMore: () => false } });
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o);
  await writesReach(sink, 1);
  mock.timers.tick(WINDOW / 2);
  sink.drain();
  await writesReach(sink, 2);
  mock.timers.tick(WINDOW / 2);
  assert.equal(o.aborts, 1, 'cut a window after the last real progress');
  assert.equal((await done).outcome, 'stalled');
});

test('with a probe, drains alone are not progress', async () => {
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  const o = options({ probe: { tookMore: () => false } });
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o);
  for (let i = 1; i <= 16 && o.aborts === 0; i++) {
    await writesReach(sink, i);
    mock.timers.tick(WINDOW / 16);
    sink.drain();
  }
  assert.equal(o.aborts, 1);
  assert.equal((await done).outcome, 'stalled');
});

test('reads grow on drain too (chunks above the socket mark always push back)', async () => {
  const sink = new FakeSink(false);
  const fd = openSync(file, 'r');
  const o = options({ chunkSize: 256 * 1024, startChunkSize: 32 * 1024, growAfter: 128 * 1024 });
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o);
  while (!sink.ended) {
    const before = sink.writes;
    sink.drain();
    while (sink.writes === before && !sink.ended) await settle(1);
  }
  sink.drain();
  assert.equal((await done).outcome, 'complete');
  assert.equal(sink.received, SIZE);
  assert.equal(sink.sizes[0], 32 * 1024);
  assert.ok(sink.sizes.includes(256 * 1024), sink.sizes.join());
});

/** A client whose kernel acknowledges `acked` of the bytes the sink took (undefined: no figure). */
function fakeClient(sink: FakeSink): { acked: number | undefined; probe: ProgressProbe } {
  const client = {
    acked: 0 as number | undefined,
    probe: {
      tookMore: () => false,
      unacknowledged: () => (client.acked === undefined ? undefined : sink.received - client.acked),
    },
  };
  return client;
}
const SAMPLE = WINDOW / 8;

test('an unproven client is held at UNPROVEN_IN_FLIGHT unacknowledged bytes; once it acknowledges them, reads grow', async () => {
  const sink = new FakeSink(true);
  const client = fakeClient(sink);
  const fd = openSync(file, 'r');
  const o = options({ probe: client.probe, startChunkSize: 16 * 1024, chunkSize: 128 * 1024 });
  let result = undefined as TransferResult | undefined;
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o).then((r) => (result = r));
  while (sink.received < UNPROVEN_IN_FLIGHT) await settle(1);
  await settle();
  mock.timers.tick(SAMPLE / 2);
  await settle();
  assert.equal(sink.received, UNPROVEN_IN_FLIGHT, 'held at the budget');
  assert.equal(result, undefined);
  client.acked = sink.received; // the client reads it all
  mock.timers.tick(SAMPLE);
  assert.equal((await done).outcome, 'complete');
  assert.equal(sink.received, SIZE);
  assert.equal(sink.sizes[0], 16 * 1024);
  assert.ok(sink.sizes.includes(128 * 1024), sink.sizes.join());
  assert.ok(isClosed(fd));
});

test('a held client that acknowledges nothing is cut at the window', async () => {
  const sink = new FakeSink(true);
  const client = fakeClient(sink);
  const fd = openSync(file, 'r');
  const o = options({ probe: client.probe, startChunkSize: 16 * 1024 });
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o);
  while (sink.received < UNPROVEN_IN_FLIGHT) await settle(1);
  for (let t = 0; t < WINDOW; t += SAMPLE) {
    mock.timers.tick(SAMPLE);
    await settle();
  }
  const result = await done;
  assert.equal(result.outcome, 'stalled');
  assert.equal(result.bytesSent, UNPROVEN_IN_FLIGHT);
  assert.equal(o.aborts, 1);
  assert.ok(isClosed(fd));
});

test('a probe that never has a figure stops holding within two seconds', async () => {
  const sink = new FakeSink(true);
  const client = fakeClient(sink);
  client.acked = undefined;
  const fd = openSync(file, 'r');
  const o = options({ probe: client.probe, startChunkSize: 16 * 1024 });
  let result = undefined as TransferResult | undefined;
  const done = sendBody(sink, owned(fd), [{ start: 0, end: SIZE - 1 }], o).then((r) => (result = r));
  while (sink.received < UNPROVEN_IN_FLIGHT) await settle(1);
  for (let t = 0; t < 3000 && result === undefined; t += SAMPLE / 8) {
    mock.timers.tick(SAMPLE / 8);
    await settle();
  }
  assert.equal((await done).outcome, 'complete');
  assert.equal(sink.received, SIZE);
});

test('a range that fits in one modest read is read at once', async () => {
  const sink = new FakeSink(true);
  const fd = openSync(file, 'r');
  const o = options({ startChunkSize: 16 * 1024, chunkSize: undefined });
  const result = await sendBody(sink, owned(fd), [{ start: 512, end: 512 + 40 * 1024 - 1 }], o);
  assert.equal(result.outcome, 'complete');
  assert.deepEqual(sink.sizes, [40 * 1024]);
});
