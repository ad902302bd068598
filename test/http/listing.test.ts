// Directory listings as a person reads them: sizes in binary units, exact bytes on hover and
// in the JSON.
import assert from 'node:assert/strict';
import { rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { humanSize, renderListingHtml } from '../../lib/http/listing.js';
import { fetch, startServer } from '../helpers/server.js';
import { tempRoot } from '../helpers/temp.js';

test('humanSize: bytes below 1 KiB as they are, then one decimal in powers of 1024', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [1048575, '1.0 MiB'], // rounds up into the next unit rather than "1024.0 KiB"
    [14190528, '13.5 MiB'],
    [1073741824, '1.0 GiB'],
    [4.7e9, '4.4 GiB'],
    [2 ** 40, '1.0 TiB'],
    [Number.MAX_SAFE_INTEGER, '8.0 PiB'],
  ];
  for (const [bytes, text] of cases) assert.equal(humanSize(bytes), text, String(bytes));
});

test('the HTML listing shows sizes for people, the exact count on hover; folders have none', () => {
  const html = renderListingHtml('/isos/', [
    { name: 'sub', type: 'directory', size: 0, mtime: '2026-01-01T00:00:00.000Z' },
    { name: 'big.iso', type: 'file', size: 1073741824, mtime: '2026-01-01T00:00:00.000Z' },
    { name: '<tiny>', type: 'file', size: 3, mtime: '2026-01-01T00:00:00.000Z' },
  ]);
  assert.match(html, /<a href="sub\/">sub\/<\/a><\/td><td>-<\/td>/);
  assert.match(html, /<a href="big.iso">big.iso<\/a><\/td><td class="size" title="1073741824 bytes">1.0 GiB<\/td>/);
  assert.match(html, /<a href="%3Ctiny%3E">&#60;tiny&#62;<\/a><\/td><td class="size" title="3 bytes">3 B<\/td>/);
});

test('over HTTP: a 1 GiB file reads "1.0 GiB" in HTML and 1073741824 in JSON', async (t) => {
  const root = tempRoot({ 'small.txt': 'hello', 'big.iso': '' }, t);
  truncateSync(join(root, 'big.iso'), 1073741824); // sparse: costs no disk
  const s = await startServer({ root });
  t.after(async () => {
    await s.close();
    rmSync(root, { recursive: true, force: true });
  });
  const html = (await fetch(`${s.url}/`)).body.toString();
  assert.match(html, /<td class="size" title="1073741824 bytes">1.0 GiB<\/td>/);
  assert.match(html, /<td class="size" title="5 bytes">5 B<\/td>/);
  const json = JSON.parse((await fetch(`${s.url}/`, { headers: { accept: 'application/json' } })).body.toString()) as {
    name: string;
    size: number;
  }[];
  assert.deepEqual(
    json.map((e) => [e.name, e.size]),
    [
      ['big.iso', 1073741824],
      ['small.txt', 5],
    ],
  );
});
