// The stall guard over real loopback sockets, in real time, with short windows.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import type { DuplexOptions } from 'node:stream';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../helpers/eventually.js';
import { startServer, type TestServer } from '../helpers/server.js';

const MB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Open a connection and send a GET; the socket starts paused (reading nothing).
 *
 * Its stream buffer is pinned at 16 KiB, the default before Node 22 (64 KiB since). Node refills
 * that buffer from the kernel 64 KiB at a time whenever it is below the mark, so the mark decides
 * how far ahead of the reader the kernel is drained. From a 64 KiB mark the client takes about
 * 130 KB in its first milliseconds; Linux's receive-buffer tuning takes that for a fast reader and
 * grows the client's buffer from 128 KiB to 250-500 KB, and on loopback a full buffer that size
 * is a few large segments whose memory comes back only when a whole one has been read. A client
 * then reading 16 KB/s keeps its window shut, and acknowledges nothing, for 10-30 s on end.
 */
function get(s: TestServer, path: string): Socket {
  const options: NetConnectOpts & DuplexOptions = { port: s.port, host: '127.0.0.1', readableHighWaterMark: 16 * 1024 };
  const socket = connect(options);
  socket.pause();
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n`);
  return socket;
}

/**
 * Read from a paused socket at `bytesPerSecond`, in ten steps a second, for `ms`. Each step reads
 * what keeps the average at the rate since the start, so a late timer on a busy machine does not
 * make the client slower than it claims to be.
 */
async function readSlowly(
  socket: Socket,
  bytesPerSecond: number,
  ms: number,
  keep: Buffer[] = [],
): Promise<{ got: number; closed: boolean }> {
  let got = 0;
  let closed = false;
  socket.once('close', () => (closed = true));
  const start = Date.now();
  const end = start + ms;
  while (Date.now() < end && !closed) {
    let want = Math.floor((bytesPerSecond * (Date.now() - start + 100)) / 1000) - got;
    while (want > 0 && socket.readableLength > 0) {
      const chunk = socket.read(Math.min(want, socket.readableLength)) as Buffer | null;
      if (!chunk) break;
      keep.push(chunk);
      got += chunk.length;
      want -= chunk.length;
    }
    if (socket.readableLength === 0) socket.read(0); // ask libuv for more
    await sleep(100);
  }
  return { got, closed };
}

/** Collect a whole HTTP response body from a socket, reading at full speed. */
function drainResponse(socket: Socket, already: Buffer[] = []): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks = already;
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.resume();
  });
}

/** Descriptors of this process on `s`: its files, and both ends of its connections. */
function descriptorsOf(s: TestServer): string[] {
  const sockets = new Set(connectionsOnPort(s.port).map((row) => `socket:[${row.trim().split(/\s+/)[9]}]`));
  const targets = readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return ''; // closed meanwhile (the listing's own descriptor)
    }
  });
  return targets.filter((target) => target.startsWith(`${s.root}/`) || sockets.has(target));
}

/** Rows of /proc/net/tcp for connections (not the listener) on a local port. */
function connectionsOnPort(port: number): string[] {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .filter((line) => line.includes(hex) && line.trim().split(/\s+/)[3] !== '0A');
}

function bodyOf(response: Buffer): Buffer {
  return response.subarray(response.indexOf('\r\n\r\n') + 4);
}

describe('stall guard (real time)', { concurrency: true }, () => {
  test('a client that reads nothing is cut with a reset within stall + 1 s', async () => {
    const s = await startServer({ stallTimeoutMs: 2000, files: { 'big.img': randomBytes(64 * MB) } });
    try {
      const logged = s.nextLog('/big.img');
      const socket = get(s, '/big.img');
      const entry = await logged;
      assert.equal(entry.outcome, 'stalled');
      assert.ok(entry.durationMs >= 2000 && entry.durationMs <= 3000, `cut after ${entry.durationMs} ms`);
      assert.ok(entry.bytesSent < entry.bytesDue);
      // A reset, not a FIN: the kernel dropped the queued bytes at once, so neither end of
      // the connection is left in the table (a FIN would leave ours in FIN-WAIT-1 for minutes).
      await eventually(() => {
        assert.deepEqual(connectionsOnPort(s.port), []);
        assert.equal(s.stats.connections, 0);
      });
      socket.destroy();
    } finally {
      await s.close();
    }
  });

  test('a client that pauses for less than the window, then resumes, gets every byte', async () => {
    const body = randomBytes(16 * MB);
    const s = await startServer({ stallTimeoutMs: 3000, files: { 'initrd.img': body } });
    try {
      const logged = s.nextLog('/initrd.img');
      const socket = get(s, '/initrd.img');
      const head: Buffer[] = [];
      await readSlowly(socket, 1024 * 1024, 300, head);
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null)) head.push(chunk);
      await sleep(1000); // paused: well under the 3 s window
      const response = await drainResponse(socket, head);
      assert.equal((await logged).outcome, 'complete');
      assert.equal(sha(bodyOf(response)), sha(body));
    } finally {
      await s.close();
    }
  });

  test('a client reading steadily at 16 KB/s for more than three windows is never cut', async () => {
    // On loopback the client's kernel reopens its receive window in steps of about 93 KB, so
    // at 16 KB/s acknowledgements come every ~6 s: that needs the default 10 s window.
    const s = await startServer({ stallTimeoutMs: 10_000, files: { 'big.img': randomBytes(64 * MB) } });
    try {
      const socket = get(s, '/big.img');
      const { got, closed } = await readSlowly(socket, 16 * 1024, 31_000);
      assert.equal(closed, false, `cut after reading ${got} bytes`);
      assert.ok(got > 16 * 1024 * 25, `read only ${got} bytes`);
      assert.equal(s.logs.length, 0, JSON.stringify(s.logs));
      socket.destroy();
    } finally {
      await s.close();
    }
  });

  test('after 50 completed, aborted and stalled transfers no file descriptor is left open', async () => {
    const s = await startServer({ stallTimeoutMs: 1000, files: { 'a.img': randomBytes(8 * MB) } });
    try {
      const sockets: Socket[] = [];
      const jobs: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) {
        const socket = get(s, '/a.img');
        sockets.push(socket);
        if (i % 3 === 0) jobs.push(drainResponse(socket).catch(() => undefined)); // completes
        // Client gone, once its response has begun: one gone before the server read its request
        // would leave no log line (the count below waits for 50).
        else if (i % 3 === 1) socket.once('readable', () => setTimeout(() => socket.destroy(), i));
        // else: never reads, stalls
      }
      await eventually(() => descriptorsOf(s).length > 0, { what: 'descriptorsOf() to see the connections' });
      await eventually(() => s.logs.length >= 50, { timeoutMs: 60_000, what: '50 access-log lines' });
      await Promise.all(jobs);
      for (const socket of sockets) socket.destroy();
      const outcomes = new Set(s.logs.map((l) => l.outcome));
      assert.ok(outcomes.has('complete') && outcomes.has('client-gone') && outcomes.has('stalled'), [...outcomes].join());
      assert.equal(s.transfers.active.size, 0);
      // Counted by what they point to: the other tests of this suite run at the same time. The
      // open-file cache keeps the file open for the next request, and nothing else may stay.
      await eventually(() => {
        assert.equal(s.stats.connections, 0);
        const open = descriptorsOf(s);
        assert.deepEqual(open.filter((d) => d.startsWith('socket:')), []);
        assert.ok(open.length <= (s.app.files?.size ?? 0), `${open.join(' ')} open, the cache holds ${s.app.files?.size ?? 0}`);
      }, { timeoutMs: 2000 });
    } finally {
      await s.close();
    }
  });
});
