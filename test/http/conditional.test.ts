import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluatePreconditions, ifRangeAllows, validatorsOf, parseHttpDate } from '../../lib/http/conditional.js';
import { tempDir } from '../helpers/temp.js';

const v = { etag: '"abc"', lastModified: Date.parse('Wed, 21 Oct 2026 07:28:00 GMT') };
const LM = 'Wed, 21 Oct 2026 07:28:00 GMT';
const EARLIER = 'Wed, 21 Oct 2026 07:27:59 GMT';

test('If-None-Match: 304 on a match (weak comparison), proceed otherwise', () => {
  assert.equal(evaluatePreconditions({ 'if-none-match': '"abc"' }, v), 'not-modified');
  assert.equal(evaluatePreconditions({ 'if-none-match': 'W/"abc"' }, v), 'not-modified');
  assert.equal(evaluatePreconditions({ 'if-none-match': '"x", "abc"' }, v), 'not-modified');
  assert.equal(evaluatePreconditions({ 'if-none-match': '*' }, v), 'not-modified');
  assert.equal(evaluatePreconditions({ 'if-none-match': '"x"' }, v), 'proceed');
  // If-None-Match wins over If-Modified-Since
  assert.equal(evaluatePreconditions({ 'if-none-match': '"x"', 'if-modified-since': LM }, v), 'proceed');
});

test('If-Modified-Since: 304 when not newer; invalid dates are ignored', () => {
  assert.equal(evaluatePreconditions({ 'if-modified-since': LM }, v), 'not-modified');
  assert.equal(evaluatePreconditions({ 'if-modified-since': EARLIER }, v), 'proceed');
  assert.equal(evaluatePreconditions({ 'if-modified-since': 'yesterday' }, v), 'proceed');
});

test('If-Match and If-Unmodified-Since failures give 412', () => {
  assert.equal(evaluatePreconditions({ 'if-match': '"abc"' }, v), 'proceed');
  assert.equal(evaluatePreconditions({ 'if-match': '*' }, v), 'proceed');
  assert.equal(evaluatePreconditions({ 'if-match': 'W/"abc"' }, v), 'precondition-failed');
  assert.equal(evaluatePreconditions({ 'if-match': '"nope"' }, v), 'precondition-failed');
  assert.equal(evaluatePreconditions({ 'if-unmodified-since': EARLIER }, v), 'precondition-failed');
  assert.equal(evaluatePreconditions({ 'if-unmodified-since': LM }, v), 'proceed');
  // If-Match takes precedence over If-Unmodified-Since
  assert.equal(evaluatePreconditions({ 'if-match': '"abc"', 'if-unmodified-since': EARLIER }, v), 'proceed');
});

test('If-Range: strong ETag or exact date only', () => {
  assert.equal(ifRangeAllows(undefined, v), true);
  assert.equal(ifRangeAllows('"abc"', v), true);
  assert.equal(ifRangeAllows('"old"', v), false);
  assert.equal(ifRangeAllows('W/"abc"', v), false);
  assert.equal(ifRangeAllows(LM, v), true);
  assert.equal(ifRangeAllows(EARLIER, v), false);
  assert.equal(ifRangeAllows('garbage', v), false);
  assert.equal(parseHttpDate(undefined), undefined);
});

test('the ETag changes when the file changes', (t) => {
  const file = join(tempDir(t, 'bootserve-etag-'), 'f');
  writeFileSync(file, 'one');
  const a = validatorsOf(statSync(file));
  writeFileSync(file, 'three');
  const b = validatorsOf(statSync(file));
  assert.notEqual(a.etag, b.etag);
  assert.match(a.etag, /^"[^"]+"$/);
  assert.equal(a.lastModified % 1000, 0);
});
