import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseFileName, parseRequestPath, resolveInRoot } from '../../lib/paths.js';
import { tempDir } from '../helpers/temp.js';

const ok = (segments: string[], trailingSlash = false) => ({ kind: 'ok', segments, trailingSlash });

test('paths are split, decoded once, and queries ignored', () => {
  assert.deepEqual(parseRequestPath('/', false), ok([]));
  assert.deepEqual(parseRequestPath('/a/b.efi?x=1#f', false), ok(['a', 'b.efi']));
  assert.deepEqual(parseRequestPath('/a%20b/', false), ok(['a b'], true));
  assert.deepEqual(parseRequestPath('//a/./b', false), ok(['a', 'b']));
  assert.deepEqual(parseRequestPath('/%252e%252e/x', false), ok(['%2e%2e', 'x']));
  assert.deepEqual(parseRequestPath('http://host/a/b', false), ok(['a', 'b']));
});

test('traversal and hidden names are 404', () => {
  for (const p of [
    '/../etc/passwd',
    '/a/../../x',
    '/%2e%2e/x',
    '/%2E%2e/x',
    '/.git/config',
    '/a/.hidden',
    '/..\\..\\etc\\passwd',
    '/a\\b',
  ]) {
    assert.deepEqual(parseRequestPath(p, false), { kind: 'not-found' }, p);
  }
  assert.deepEqual(parseRequestPath('/.well/x', true), ok(['.well', 'x']));
  assert.deepEqual(parseRequestPath('/..', true), { kind: 'not-found' });
});

test('NUL, encoded separators and bad escapes are 400', () => {
  for (const p of ['/a%00b', '/a%2fb', '/a%2Fb', '/a%5cb', '/%E0%A4%A', '/a%zz', 'no-slash']) {
    assert.deepEqual(parseRequestPath(p, false), { kind: 'bad-request' }, p);
  }
});

test('symlinks that leave the root, or lead to hidden names, resolve to nothing', async (t) => {
  const base = tempDir(t, 'bootserve-paths-');
  const root = join(base, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(root, '.hidden'));
  writeFileSync(join(base, 'secret'), 's');
  writeFileSync(join(root, 'sub', 'k'), 'k');
  writeFileSync(join(root, '.hidden', 'h'), 'h');
  symlinkSync(join(base, 'secret'), join(root, 'escape'));
  symlinkSync(join(root, 'sub', 'k'), join(root, 'inside'));
  symlinkSync(join(root, '.hidden', 'h'), join(root, 'tohidden'));
  symlinkSync('/', join(root, 'slash'));
  assert.equal(await resolveInRoot(root, ['escape'], false), null);
  assert.equal(await resolveInRoot(root, ['slash', 'etc', 'passwd'], false), null);
  assert.equal(await resolveInRoot(root, ['inside'], false), join(root, 'sub', 'k'));
  assert.equal(await resolveInRoot(root, ['tohidden'], false), null);
  assert.equal(await resolveInRoot(root, ['tohidden'], true), join(root, '.hidden', 'h'));
  assert.equal(await resolveInRoot(root, ['missing'], false), null);
  assert.equal(await resolveInRoot(root, ['sub', 'k', 'x'], false), null);
  assert.equal(await resolveInRoot(root, [], false), root);
});

test('TFTP file names: leading slash ignored, backslashes are separators, same containment', () => {
  assert.deepEqual(parseFileName('undionly.kpxe', false), ok(['undionly.kpxe']));
  assert.deepEqual(parseFileName('/ipxe/snponly.efi', false), ok(['ipxe', 'snponly.efi']));
  assert.deepEqual(parseFileName('\\boot\\x64\\wdsnbp.com', false), ok(['boot', 'x64', 'wdsnbp.com']));
  assert.deepEqual(parseFileName('a%20b', false), ok(['a%20b']), 'not percent-decoded');
  for (const p of ['../etc/passwd', '/a/../../x', '..\\..\\etc\\passwd', 'a\\..\\..\\x', '.hidden', 'a/.git/config']) {
    assert.deepEqual(parseFileName(p, false), { kind: 'not-found' }, p);
  }
  assert.deepEqual(parseFileName('.well/x', true), ok(['.well', 'x']));
  assert.deepEqual(parseFileName('a\0b', false), { kind: 'bad-request' });
});
