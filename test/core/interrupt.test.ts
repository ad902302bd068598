// A second SIGINT exits at once and says which transfers it cut (their access-log lines never
// come): here one download whose client stopped reading, still within its stall window.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { test } from 'node:test';
import { tempRoot } from '../helpers/temp.js';
import { BIN, KEEP_ROOT, start } from '../helpers/tools.js';
import { eventually } from '../helpers/eventually.js';

test('SIGINT twice: the second names the transfer it cuts and exits 1', { timeout: 30_000 }, async (t) => {
  const root = tempRoot({ 'big.img': randomBytes(16 * 1024 * 1024) }, t);
  const child = start(process.execPath, [BIN, ...KEEP_ROOT, root, '--host', '127.0.0.1', '--port', '0', '--stall-timeout', '20s']);
  t.after(() => child.stop());
  const banner = await child.waitForLine(/listening on http:\/\/127\.0\.0\.1:(\d+)\//);
  const port = Number(/:(\d+)\/$/.exec(banner)?.[1]);
  // A client that asks and then reads nothing: the transfer stays open, waiting on it.
  const socket = connect(port, '127.0.0.1', () => socket.write('GET /big.img HTTP/1.1\r\nHost: x\r\n\r\n'));
  socket.pause();
  t.after(() => socket.destroy());
  await new Promise((r) => setTimeout(r, 500));
  child.proc.kill('SIGINT');
  await child.waitForLine(/SIGINT: finishing transfers/);
  child.proc.kill('SIGINT');
  assert.equal(await child.exited(10_000), 1);
  await eventually(() => /cut: 127\.0\.0\.1 http \/big\.img at \d+ of 16777216 bytes/.test(child.stderr()), {
    timeoutMs: 2000,
    what: 'the cut line',
  });
  assert.match(child.stderr(), /SIGINT again: exiting now, cutting 1 transfer\n/);
});
