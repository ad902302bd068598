import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coalesce, parseRange } from '../../lib/http/range.js';
import { multipartBody } from '../../lib/http/multipart.js';

test('no header, another unit or bad syntax: the whole file', () => {
  for (const h of [
    undefined,
    'items=0-1',
    'bytes',
    'bytes=',
    'bytes=a-b',
    'bytes=5-2',
    'bytes=1-2-3',
    'bytes=-',
    'bytes=0x1-2',
    'bytes=1',
    'bytes=--1',
  ]) {
    assert.deepEqual(parseRange(h, 100), { kind: 'full' }, String(h));
  }
});

test('single ranges: a-b, a-, -n, end clamped', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'partial', ranges: [{ start: 0, end: 9 }] });
  assert.deepEqual(parseRange('bytes=90-', 100), { kind: 'partial', ranges: [{ start: 90, end: 99 }] });
  assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'partial', ranges: [{ start: 90, end: 99 }] });
  assert.deepEqual(parseRange('bytes=-1000', 100), { kind: 'partial', ranges: [{ start: 0, end: 99 }] });
  assert.deepEqual(parseRange('bytes=50-18446744073709551615', 100), { kind: 'partial', ranges: [{ start: 50, end: 99 }] });
  assert.deepEqual(parseRange('Bytes = 1-1', 100), { kind: 'partial', ranges: [{ start: 1, end: 1 }] });
});

test('unsatisfiable ranges give 416', () => {
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=18446744073709551615-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=200-300,400-', 100), { kind: 'unsatisfiable' });
});

test('several ranges are sorted and coalesced when overlapping or adjacent', () => {
  assert.deepEqual(parseRange('bytes=50-59,0-9,10-19', 100), {
    kind: 'partial',
    ranges: [
      { start: 0, end: 19 },
      { start: 50, end: 59 },
    ],
  });
  assert.deepEqual(parseRange('bytes=0-9, 200-300, 20-29', 100), {
    kind: 'partial',
    ranges: [
      { start: 0, end: 9 },
      { start: 20, end: 29 },
    ],
  });
  assert.deepEqual(
    coalesce([
      { start: 5, end: 10 },
      { start: 0, end: 6 },
    ]),
    [{ start: 0, end: 10 }],
  );
});

test('Apache Killer and too many ranges: the whole file, once', () => {
  const killer = 'bytes=0-,' + Array.from({ length: 1300 }, (_, i) => `5-${i}`).join(',');
  assert.deepEqual(parseRange(killer, 100_000), { kind: 'full' });
  const many = 'bytes=' + Array.from({ length: 17 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',');
  assert.deepEqual(parseRange(many, 1000), { kind: 'full' });
  const sixteen = 'bytes=' + Array.from({ length: 16 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',');
  assert.equal((parseRange(sixteen, 1000) as { ranges: unknown[] }).ranges.length, 16);
  assert.deepEqual(parseRange('bytes=0-79,20-99', 100), { kind: 'full' }); // overlap adds to more than the file
});

test('multipart framing has an exact length', () => {
  const body = multipartBody([{ start: 0, end: 1 }, { start: 5, end: 6 }], 7, 'text/plain', 'XYZ');
  assert.equal(body.contentType, 'multipart/byteranges; boundary=XYZ');
  const text = body.parts.map((p) => (Buffer.isBuffer(p) ? p.toString() : 'D'.repeat(p.end - p.start + 1))).join('');
  assert.equal(text.length, body.length);
  assert.equal(
    text,
    '--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/7\r\n\r\nDD\r\n' +
    '--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/7\r\n\r\nDD\r\n--XYZ--\r\n',
  );
});
