import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { longLines, MAX_LINE } from '../../scripts/check-style.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

test(`the line-length rule: no line in lib/, test/ or scripts/ is over ${MAX_LINE} characters`, () => {
  const long = longLines(REPO, ['lib', 'test', 'scripts']);
  assert.deepEqual(long.map((l) => `${l.file}:${l.line}: ${l.length}`), []);
});
