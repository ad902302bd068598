// The operational surface: /-/ endpoints, metrics format, live terminal lines.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { adminReply, metricsText, type AdminState } from '../../lib/admin/pages.js';
import { createHttpService } from '../../lib/http/server.js';
import { createLiveView, renderLines } from '../../lib/observe/live.js';
import { Transfers } from '../../lib/observe/transfers.js';
import { eventually } from '../helpers/eventually.js';
import { fetch, spawnBinary, startServer } from '../helpers/server.js';
import { tempRoot } from '../helpers/temp.js';


async function adminServer(files: Record<string, string | Buffer> = {}, stallTimeoutMs = 10_000) {
  return { s: await startServer({ files, stallTimeoutMs }) };
}

test('/-/healthy, /-/ready (503 while shutting down), unknown admin paths 404', async () => {
  const { s } = await adminServer();
  try {
    assert.equal((await fetch(`${s.url}/-/healthy`)).body.toString(), 'ok\n');
    assert.equal((await fetch(`${s.url}/-/ready`)).status, 200);
    const stopping: AdminState = {
      version: 't',
      root: s.root,
      settings: {},
      transfers: s.transfers,
      ready: () => false,
      services: () => s.app.services,
    };
    const notReady = adminReply({ url: '/-/ready' } as IncomingMessage, stopping);
    assert.equal(notReady.status, 503);
    assert.equal(notReady.headers['Retry-After'], '5');
    assert.equal((await fetch(`${s.url}/-/nope`)).status, 404);
    assert.equal(s.logs.length, 0, 'admin requests are not access-logged');
  } finally {
    await s.close();
  }
});

test('/-/status shows active transfers with progress and the last finished ones', async () => {
  const { s } = await adminServer({ 'big.img': randomBytes(32 * 1024 * 1024), 'boot.ipxe': '#!ipxe\n' }, 2000);
  try {
    await fetch(`${s.url}/boot.ipxe`);
    const socket = connect(s.port, '127.0.0.1');
    socket.pause();
    socket.on('error', () => {});
    socket.write('GET /big.img HTTP/1.1\r\nHost: x\r\nRange: bytes=0-20000000\r\n\r\n');
    // Listed once it has sent something.
    const status = await eventually(async () => {
      const status = JSON.parse((await fetch(`${s.url}/-/status`)).body.toString());
      assert.ok(status.active[0]?.bytesSent > 0, JSON.stringify(status.active));
      return status;
    });
    assert.equal(status.version, '9.9.9');
    assert.equal(status.config.stallTimeoutMs, 2000, 'the settings in force');
    assert.equal(typeof status.uptimeSeconds, 'number');
    assert.equal(status.active.length, 1);
    const t = status.active[0];
    assert.equal(t.path, '/big.img');
    assert.equal(t.client, '127.0.0.1');
    assert.equal(t.range, 'bytes 0-20000000/33554432');
    assert.equal(t.bytesDue, 20000001);
    assert.ok(t.bytesSent > 0 && t.bytesSent < t.bytesDue);
    assert.ok(t.percent > 0 && t.percent < 100);
    for (const key of ['bytesPerSecond', 'secondsSinceProgress', 'seconds']) assert.equal(typeof t[key], 'number', key);
    assert.equal(status.recent[0].path, '/boot.ipxe');
    assert.equal(status.recent[0].outcome, 'complete');
    const page = await fetch(`${s.url}/-/`);
    assert.match(page.headers['content-type'] ?? '', /text\/html/);
    assert.match(page.body.toString(), /<noscript><meta http-equiv="refresh"/, 'without JavaScript, the page reloads itself');
    assert.match(page.body.toString(), /\/big\.img/, 'the first picture is drawn by the server');
    // Once it stalls, the outcome and where it stopped are listed.
    await s.nextLog('/big.img');
    const after = JSON.parse((await fetch(`${s.url}/-/status`)).body.toString());
    assert.equal(after.recent[0].outcome, 'stalled');
    assert.ok(after.recent[0].bytesSent < after.recent[0].bytesDue);
    socket.destroy();
  } finally {
    await s.close();
  }
});

test('/-/metrics follows the Prometheus text format', async () => {
  const { s } = await adminServer({ 'boot.ipxe': '#!ipxe\n' });
  try {
    await fetch(`${s.url}/boot.ipxe`);
    await fetch(`${s.url}/missing`);
    const r = await fetch(`${s.url}/-/metrics`);
    assert.match(r.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
    const text = r.body.toString();
    assert.match(text, /^bootserve_requests_total\{code="200"\} 1$/m);
    assert.match(text, /^bootserve_requests_total\{code="404"\} 1$/m);
    assert.match(text, /^bootserve_transfers_total\{outcome="complete"\} 2$/m);
    assert.match(text, /^bootserve_sent_bytes_total \d+$/m);
    assert.match(text, /^bootserve_connections 1$/m);
    assert.match(text, /^bootserve_active_transfers 0$/m);
    assert.match(text, /^bootserve_rejected_connections_total\{reason="max-connections-per-ip"\} 0$/m);
    assert.match(text, /^bootserve_transfer_duration_seconds_bucket\{le="\+Inf"\} 2$/m);
    assert.match(text, /^bootserve_transfer_duration_seconds_count 2$/m);
    assert.match(text, /^bootserve_process_start_time_seconds \d+$/m);
    for (const line of text.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{\w+="[^"]*"\})? [\d.e+-]+)$/, line);
  } finally {
    await s.close();
  }
});

test('metrics: durations land in the right histogram buckets', () => {
  const transfers = new Transfers();
  const http = createHttpService(
    {
      name: 'http',
      port: 0,
      host: '127.0.0.1',
      headerTimeoutMs: 1000,
      keepAliveTimeoutMs: 1000,
      maxConnections: 1,
      maxConnectionsPerIp: 1,
      stallTimeoutMs: 1000,
      listing: true,
      dotfiles: false,
    },
    { root: undefined, logger: { access: () => {}, error: () => {}, info: () => {} }, transfers, shuttingDown: () => false },
  );
  const state: AdminState = { version: 't', root: '/', settings: {}, transfers, ready: () => true, services: () => [http] };
  const finish = (path: string, ago: number, outcome: 'complete' | 'stalled') => {
    const t = transfers.begin({ protocol: 'http', client: 'c', path, range: undefined, bytesDue: 0 });
    (t as { startedAt: number }).startedAt -= ago;
    const done = transfers.end(t, outcome, { status: 200 });
    http.stats.finished(200, outcome, 0, done.durationMs);
  };
  finish('/p', 2000, 'complete');
  const text = metricsText(state);
  assert.match(text, /le="1"\} 0\n/);
  assert.match(text, /le="5"\} 1\n/);
  assert.match(text, /le="\+Inf"\} 1\n/);
  for (let i = 0; i < 120; i++) finish(`/${i}`, 0, 'complete');
  assert.equal(transfers.recent.length, 100);
  finish('/slow', 4000 * 1000, 'stalled');
  assert.match(metricsText(state), /le="1800"\} 121\n.*le="\+Inf"\} 122\n/s);
});

test('live view: one line per transfer on a terminal, plain lines elsewhere', () => {
  const m = new Transfers();
  const t = m.begin({ protocol: 'http', client: '10.0.0.7', path: '/debian/initrd.img', range: undefined, bytesDue: 1000 });
  t.bytesSent = 500;
  const [line] = renderLines(m, 120);
  assert.match(line as string, /\/debian\/initrd\.img 10\.0\.0\.7 \[#{10}-{10}\] 50\.0%/);
  assert.ok((renderLines(m, 30)[0] as string).length <= 29);
  for (let i = 0; i < 10; i++) m.begin({ protocol: 'http', client: 'c', path: `/${i}`, range: undefined, bytesDue: 1 });
  assert.match(renderLines(m, 120).at(-1) as string, /and 3 more/);

  const written: string[] = [];
  const sink = (tty: boolean) =>
    Object.assign(new Writable({ write: (c, _e, cb) => (written.push(String(c)), cb()) }), { isTTY: tty, columns: 80 });
  const plain = createLiveView(sink(false), true);
  plain.start(m);
  plain.print('a log line');
  plain.stop();
  assert.deepEqual(written, ['a log line\n']);

  written.length = 0;
  const live = createLiveView(sink(true), true);
  live.start(m);
  live.print('first');
  live.print('second');
  live.stop();
  const screen = written.join('');
  assert.match(screen, /^first\n {2}\/debian/);
  assert.match(screen, /\x1b\[9A\r\x1b\[Jsecond\n/); // the block is erased before the next log line
});

test('--admin-listen serves /-/ on its own address; the main port keeps /-/ reserved', async (t) => {
  const root = tempRoot({ 'boot.ipxe': '#!ipxe\n' }, t);
  const running = await spawnBinary(t, ['-H', '127.0.0.1', '-p', '0', '--admin-listen', '127.0.0.1:0', root]);
  const out = running.out();
  const admin = /admin on (http:\/\/\S+)\n/.exec(out)?.[1];
  const main = /listening on (http:\/\/\S+\/)\n/.exec(out)?.[1];
  assert.ok(admin && main, out);
  assert.equal((await fetch(`${admin}healthy`)).status, 200);
  assert.match((await fetch(`${admin}metrics`)).body.toString(), /bootserve_connections/);
  assert.equal((await fetch(`${main}-/healthy`)).status, 404);
  assert.equal((await fetch(`${main}boot.ipxe`)).status, 200);
});

test('--no-admin: /-/ is 404', async () => {
  const s = await startServer({ admin: false });
  try {
    assert.equal((await fetch(`${s.url}/-/status`)).status, 404);
  } finally {
    await s.close();
  }
});
