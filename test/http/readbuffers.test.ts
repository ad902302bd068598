// Recycled read buffers: reads land in reused memory, and only our own buffers come back.
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BufferPool } from '../../lib/http/readbuffers.js';
import { tempDir } from '../helpers/temp.js';

const pool = new BufferPool();
const recycle = (chunk: Buffer) => pool.recycle(chunk);

const file = join(tempDir({ after }, 'bootserve-readbuffers-'), 'data');
const bytes = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
writeFileSync(file, bytes);
const fd = openSync(file, 'r');
after(() => closeSync(fd));

const readAt = (length: number, position: number, given = Buffer.alloc(length)) =>
  new Promise<Buffer>((resolve, reject) =>
    pool.read(fd, given, 0, length, position, (err, n, buf) => (err ? reject(err) : resolve(buf.subarray(0, n)))),
  );

test('a large read lands in a recycled buffer, which the next read reuses once given back', async () => {
  const given = Buffer.alloc(32 * 1024);
  const first = await readAt(32 * 1024, 1000, given);
  assert.notEqual(first.buffer, given.buffer, 'not the stream’s own buffer');
  assert.deepEqual(first, bytes.subarray(1000, 1000 + 32 * 1024));
  recycle(first);
  recycle(first); // a second give-back of the same chunk is ignored
  const second = await readAt(32 * 1024, 0);
  assert.equal(second.buffer, first.buffer, 'the same memory again');
  assert.deepEqual(second, bytes.subarray(0, 32 * 1024));
  const third = await readAt(32 * 1024, 0);
  assert.notEqual(third.buffer, second.buffer, 'lent out once at a time');
});

test('a short read comes back as exactly the bytes read', async () => {
  const tail = await readAt(64 * 1024, bytes.length - 10);
  assert.equal(tail.length, 10);
  assert.deepEqual(tail, bytes.subarray(bytes.length - 10));
});

test('small reads use the buffer they were given; foreign buffers are never kept', async () => {
  const given = Buffer.alloc(100);
  const small = await readAt(100, 5, given);
  assert.equal(small.buffer, given.buffer);
  recycle(Buffer.alloc(32 * 1024)); // not ours: ignored
  recycle(small);
  const next = await readAt(100, 0);
  assert.notEqual(next.buffer, given.buffer);
});

test('odd sizes share the power-of-two classes of the usual reads', async () => {
  const usual = await readAt(64 * 1024, 0);
  recycle(usual);
  const odd = await readAt(40 * 1024, 0);
  assert.equal(odd.buffer, usual.buffer, 'a 40 KiB read reuses a 64 KiB buffer');
  assert.equal(odd.length, 40 * 1024);
  assert.deepEqual(odd, bytes.subarray(0, 40 * 1024));
});
