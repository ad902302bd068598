// The TFTP codec and option negotiation, as pure functions: no sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_BLKSIZE, MAX_WINDOWSIZE, negotiate } from '../../lib/tftp/options.js';
import { decode, encodeAck, encodeData, encodeError, encodeOack, encodeRequest } from '../../lib/tftp/packet.js';
import { toNetascii } from '../../lib/tftp/source.js';

const opts = (o: Record<string, string>) => new Map(Object.entries(o));
/** The defaults: --tftp-max-blksize 1468, --tftp-timeout 30s (a client timeout up to 7.5 s). */
const LIMITS = { maxBlksize: 1468, maxTimeoutMs: 7500 };

test('requests decode with lower-cased mode and option names, values as sent, first repeat wins', () => {
  const p = decode(Buffer.from('\0\x01pxelinux.0\0OCTET\0BLKSIZE\x001468\0tsize\x000\0blksize\x00512\0', 'latin1'));
  assert.equal(p.op, 'rrq');
  if (p.op !== 'rrq') return;
  assert.equal(p.file, 'pxelinux.0');
  assert.equal(p.mode, 'octet');
  assert.deepEqual([...p.options], [['blksize', '1468'], ['tsize', '0']]);
  assert.equal(decode(encodeRequest('wrq', 'x', 'octet')).op, 'wrq');
  // A dangling option name (a truncated request) is dropped, not fatal.
  const dangling = decode(Buffer.from('\0\x01f\0octet\0blksize\0', 'latin1'));
  assert.equal(dangling.op, 'rrq');
  if (dangling.op === 'rrq') assert.equal(dangling.options.size, 0);
});

test('the other packets round-trip', () => {
  assert.deepEqual(decode(encodeAck(65535)), { op: 'ack', block: 65535 });
  assert.deepEqual(decode(encodeAck(65536)), { op: 'ack', block: 0 }, 'block numbers wrap');
  const data = decode(encodeData(7, Buffer.from('abc')));
  assert.equal(data.op, 'data');
  if (data.op === 'data') assert.deepEqual([data.block, data.data.toString()], [7, 'abc']);
  assert.deepEqual(decode(encodeError(8, 'tsize probe')), { op: 'error', code: 8, message: 'tsize probe' });
  assert.deepEqual(decode(Buffer.from('\0\x05\0\x01no nul', 'latin1')), { op: 'error', code: 1, message: 'no nul' });
  const oack = decode(encodeOack([['blksize', '1468'], ['tsize', '42']]));
  assert.equal(oack.op, 'oack');
  if (oack.op === 'oack') assert.deepEqual([...oack.options], [['blksize', '1468'], ['tsize', '42']]);
  assert.deepEqual(encodeOack([['tsize', '3']]), Buffer.from('\0\x06tsize\x003\0', 'latin1'));
});

test('malformed datagrams are named, never thrown', () => {
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([0])],
    ['opcode 0', Buffer.from([0, 0, 1, 2])],
    ['opcode 9', Buffer.from([0, 9])],
    ['unterminated name', Buffer.from('\0\x01file', 'latin1')],
    ['empty name', Buffer.from('\0\x01\0octet\0', 'latin1')],
    ['no mode', Buffer.from('\0\x01file\0', 'latin1')],
    ['short ack', Buffer.from([0, 4, 1])],
    ['short data', Buffer.from([0, 3])],
    ['short error', Buffer.from([0, 5, 0])],
    ['unterminated oack', Buffer.from('\0\x06tsize', 'latin1')],
  ];
  for (const [name, buf] of cases) assert.equal(decode(buf).op, 'malformed', name);
  // Random bytes: whatever they are, decode answers.
  for (let i = 0; i < 2000; i++) {
    const buf = Buffer.from(Array.from({ length: i % 40 }, () => Math.floor(Math.random() * 256)));
    assert.equal(typeof decode(buf).op, 'string');
  }
});

test('no options asked: no OACK, 512-byte blocks, window 1', () => {
  assert.deepEqual(negotiate(opts({}), 100, LIMITS), { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutMs: undefined, oack: [] });
  assert.deepEqual(negotiate(opts({ multicast: '', rollover: '0' }), 100, LIMITS).oack, [], 'unknown options are not echoed');
});

test('edk2 size probe and download: exactly what was asked, in its order, never more', () => {
  const probe = negotiate(opts({ tsize: '0', blksize: '1468', windowsize: '4' }), 74213, LIMITS);
  assert.deepEqual(probe.oack, [['tsize', '74213'], ['blksize', '1468'], ['windowsize', '4']]);
  assert.equal(probe.blksize, 1468);
  assert.equal(probe.windowsize, 4);
  const get = negotiate(opts({ blksize: '1468', windowsize: '4' }), 74213, LIMITS);
  assert.deepEqual(get.oack, [['blksize', '1468'], ['windowsize', '4']], 'no tsize unless asked');
});

test('blksize: 8 to 65464, clamped to --tftp-max-blksize, nonsense left out', () => {
  const b = (asked: string, max = 1468) => negotiate(opts({ blksize: asked }), 0, { ...LIMITS, maxBlksize: max });
  assert.deepEqual(b('1432').oack, [['blksize', '1432']]);
  assert.deepEqual(b('9000').oack, [['blksize', '1468']]);
  assert.deepEqual(b('65535', 65464).oack, [['blksize', '65464']]);
  assert.deepEqual(b('8').oack, [['blksize', '8']]);
  for (const bad of ['7', '0', '-1', 'abc', '', '1e3', '99999999999']) assert.deepEqual(b(bad).oack, [], bad);
  assert.equal(b('7').blksize, 512);
});

test('timeout echoed exactly when 1-255, else left out; it sets the resend interval', () => {
  const t = (asked: string) => negotiate(opts({ timeout: asked }), 0, LIMITS);
  assert.deepEqual(t('4').oack, [['timeout', '4']]);
  assert.equal(t('4').timeoutMs, 4000);
  assert.deepEqual(t('05').oack, [['timeout', '05']], 'as sent');
  for (const bad of ['0', '256', 'x', '1.5']) assert.deepEqual(t(bad).oack, [], bad);
  // 10 s against a 30 s give-up would leave no second resend: left out, we resend at our pace.
  assert.deepEqual(t('10').oack, []);
  assert.equal(t('10').timeoutMs, undefined);
});

test('windowsize: at most what was asked, at most MAX_WINDOWSIZE and 1 MiB of blocks', () => {
  const w = (asked: string, blksize = '1468') => negotiate(opts({ blksize, windowsize: asked }), 0, { ...LIMITS, maxBlksize: 65464 });
  assert.equal(w('16').windowsize, 16);
  assert.equal(w('1000').windowsize, MAX_WINDOWSIZE);
  assert.equal(w('64', '65464').windowsize, 16, '16 × 64 KiB = 1 MiB');
  assert.deepEqual(w('0').oack, [['blksize', '1468']]);
  assert.deepEqual(w('65536').oack, [['blksize', '1468']]);
});

test('tsize is not offered when the size on the wire is unknown (netascii)', () => {
  assert.deepEqual(negotiate(opts({ tsize: '0' }), undefined, LIMITS).oack, []);
  assert.deepEqual(negotiate(opts({ tsize: 'x' }), 5, LIMITS).oack, []);
});

test('netascii: LF becomes CR LF, a bare CR becomes CR NUL', () => {
  assert.deepEqual(toNetascii(Buffer.from('a\nb\rc')), Buffer.from('a\r\nb\r\0c', 'latin1'));
  assert.deepEqual(toNetascii(Buffer.from('plain')), Buffer.from('plain'));
});
