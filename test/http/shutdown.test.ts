// A transfer still running when the shutdown grace ends is cut, and says so: one access-log
// line with the outcome "shutdown", written before shutdown resolves (so before the process
// exits), and counted in /-/metrics.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { eventually } from '../helpers/eventually.js';
import { fetch, startServer } from '../helpers/server.js';
import { tempRoot } from '../helpers/temp.js';
import { KEEP_ROOT } from '../helpers/tools.js';

const BIN = new URL('../../bin/bootserve.js', import.meta.url).pathname;

/** A connection that asks for `path` and then reads only what fits in its buffers. */
function stuckDownload(port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.pause();
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

test('a transfer cut when the grace ends is logged as "shutdown" before shutdown resolves', async (t) => {
  // No stall guard: the paused client would otherwise be cut as stalled first.
  const s = await startServer({ stallTimeoutMs: 0, files: { 'big.img': randomBytes(32 * 1024 * 1024) } });
  t.after(() => s.close());
  const socket = await stuckDownload(s.port, '/big.img');
  socket.on('error', () => {});
  await eventually(() => assert.equal(s.transfers.active.size, 1));
  await s.server.shutdown(200);
  // No sleep here: the line must be written by the time shutdown resolves.
  const lines = s.logs.filter((l) => l.path === '/big.img');
  assert.equal(lines.length, 1, 'one access-log line');
  assert.equal(lines[0]?.outcome, 'shutdown');
  assert.ok((lines[0]?.bytesSent ?? 0) < 32 * 1024 * 1024);
  assert.equal(lines[0]?.bytesDue, 32 * 1024 * 1024);
  assert.equal(s.transfers.active.size, 0);
  assert.match(s.metricsText(), /^bootserve_transfers_total\{outcome="shutdown"\} 1$/m);
  socket.destroy();
});

test('a client that leaves during the grace is "client-gone", not "shutdown"', async (t) => {
  const s = await startServer({ stallTimeoutMs: 0, files: { 'big.img': randomBytes(32 * 1024 * 1024), 'small.txt': 'hello' } });
  t.after(() => s.close());
  const leaver = await stuckDownload(s.port, '/big.img');
  leaver.on('error', () => {});
  await eventually(() => assert.equal(s.transfers.active.size, 1));
  const done = s.server.shutdown(1000);
  leaver.destroy();
  await done;
  assert.deepEqual(
    s.logs.map((l) => [l.path, l.outcome]),
    [['/big.img', 'client-gone']],
  );
  assert.match(s.metricsText(), /^bootserve_transfers_total\{outcome="shutdown"\} 0$/m);
});

test(
  'the binary on SIGTERM: a download still running at the end of --shutdown-grace gets its access-log line, then exit 0',
  { timeout: 20_000 },
  async (t) => {
    const root = tempRoot({ 'big.img': randomBytes(32 * 1024 * 1024) }, t);
    const child = spawn(
      process.execPath,
      [
        BIN,
        ...KEEP_ROOT,
        root,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--log-format',
        'json',
        '--shutdown-grace',
        '300ms',
        '--stall-timeout',
        '0',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const port = await eventually(() => Number(/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]) || false, {
      timeoutMs: 8000,
      what: 'the banner',
    });
    const socket = await stuckDownload(port, '/big.img');
    socket.on('error', () => {});
    await eventually(async () =>
      /^bootserve_active_transfers 1$/m.test((await fetch(`http://127.0.0.1:${port}/-/metrics`)).body.toString()),
    );
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    socket.destroy();
    const records = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { path?: string; outcome?: string; bytesSent?: number });
    const download = records.filter((r) => r.path === '/big.img');
    assert.equal(download.length, 1, out);
    assert.equal(download[0]?.outcome, 'shutdown');
  },
);
