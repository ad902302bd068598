// The open-file cache: the module alone (real files, no sockets), then a server with the cache
// over real sockets, where every change to a file between two requests that hit the cache must
// be answered as if there were no cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  fstatSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { DEFAULTS, parseArgs } from '../../lib/cli.js';
import { descriptorLimit, FileCache, fileCacheFor, OpenFile, sameVersion, SMALL_FILE } from '../../lib/http/filecache.js';
import { fetch, startServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/eventually.js';
import { tempRoot } from '../helpers/temp.js';
import { BIN, cannotRunAsNobody } from '../helpers/tools.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const openFds = () => readdirSync('/proc/self/fd').length;
/** Whether the file's descriptor is still open on that file (a closed number may be reused at once). */
const isOpen = (file: OpenFile) => {
  try {
    const s = fstatSync(file.fd);
    return s.ino === file.stats.ino && s.dev === file.stats.dev;
  } catch {
    return false;
  }
};

/** Bytes a file keeps (a function: assertions must not narrow the property for good). */
const keptBytes = (f: OpenFile) => f.bytes?.length;

/** Open `path` the way the handler does, as a file held once (by the caller). */
function opened(path: string): OpenFile {
  const fd = openSync(path, 'r');
  return new OpenFile(fd, fstatSync(fd), path);
}

describe('the cache module', () => {
  test('an open file closes when its last holder lets go, and only once', async (t) => {
    const root = tempRoot({ 'a.bin': 'abc' }, t);
    const file = opened(join(root, 'a.bin'));
    file.retain();
    assert.equal(file.holders, 2);
    file.release();
    assert.ok(isOpen(file));
    file.release();
    await file.closed;
    assert.ok(!isOpen(file));
    file.release(); // a stray release must not close a descriptor number that was reused
    assert.equal(file.holders, 0);
    assert.equal(file.contentType, 'application/octet-stream');
  });

  test('a hit needs the same device, inode, size, mtime and ctime at the requested path', (t) => {
    const root = tempRoot({ 'a.bin': 'one', 'b.bin': 'two' }, t);
    const a = join(root, 'a.bin');
    const cache = new FileCache({ files: 4, bytes: 0 });
    const file = opened(a);
    cache.admit(a, file);
    file.release();
    const hit = cache.lookup(a);
    assert.equal(hit, file);
    hit?.release();
    assert.equal(cache.hits, 1);
    assert.ok(sameVersion(statSync(a), file.stats));
    renameSync(join(root, 'b.bin'), a);
    assert.equal(cache.lookup(a), undefined, 'renamed over');
    assert.equal(cache.size, 0);
    assert.equal(cache.misses, 1);
    assert.equal(cache.lookup(join(root, 'never-admitted')), undefined);
  });

  test('a path that no longer leads anywhere, or through a file, is a miss', (t) => {
    const root = tempRoot({ 'dir/a.bin': 'one' }, t);
    const a = join(root, 'dir', 'a.bin');
    const cache = new FileCache({ files: 4, bytes: 0 });
    const file = opened(a);
    cache.admit(a, file);
    file.release();
    rmSync(join(root, 'dir'), { recursive: true });
    writeFileSync(join(root, 'dir'), 'now a file');
    assert.equal(cache.lookup(a), undefined); // ENOTDIR is thrown, not returned
    assert.equal(cache.size, 0);
  });

  test('least recently used go first; an evicted file stays open for its holders', async (t) => {
    const root = tempRoot({ 'a': '1', 'b': '2', 'c': '3' }, t);
    const cache = new FileCache({ files: 2, bytes: 0 });
    const files = ['a', 'b', 'c'].map((n) => {
      const f = opened(join(root, n));
      return { path: join(root, n), f };
    });
    const [a, b, c] = files as [(typeof files)[0], (typeof files)[0], (typeof files)[0]];
    cache.admit(a.path, a.f);
    cache.admit(b.path, b.f);
    b.f.release();
    cache.lookup(a.path); // a is now the most recent (and held twice: by us and the cache)
    cache.admit(c.path, c.f);
    c.f.release();
    assert.equal(cache.size, 2);
    await b.f.closed;
    assert.ok(!isOpen(b.f), 'b, least recently used, is closed');
    cache.shed();
    assert.equal(cache.size, 0);
    assert.ok(isOpen(a.f), 'a is still held by its two transfers');
    a.f.release();
    a.f.release();
    await a.f.closed;
    assert.ok(!isOpen(a.f));
  });

  test('admitting the same path again replaces the entry', (t) => {
    const root = tempRoot({ a: '1' }, t);
    const cache = new FileCache({ files: 2, bytes: 0 });
    const first = opened(join(root, 'a'));
    const second = opened(join(root, 'a'));
    cache.admit(join(root, 'a'), first);
    cache.admit(join(root, 'a'), second);
    assert.equal(cache.size, 1);
    assert.equal(first.holders, 1);
    first.release();
    second.release();
    cache.shed();
  });

  test('a cache of no files keeps nothing', (t) => {
    const root = tempRoot({ a: '1' }, t);
    const cache = new FileCache({ files: 0, bytes: 0 });
    const file = opened(join(root, 'a'));
    cache.admit(join(root, 'a'), file);
    assert.equal(cache.size, 0);
    assert.equal(file.holders, 1);
    file.release();
  });

  test('descriptors are given back when connections need them', (t) => {
    const root = tempRoot({ a: '1', b: '2', c: '3' }, t);
    let connections = 0;
    const cache = new FileCache({ files: 100, bytes: 0, descriptorLimit: 64 + 3, othersNeed: () => connections });
    for (const n of ['a', 'b', 'c']) {
      const f = opened(join(root, n));
      cache.admit(join(root, n), f);
      f.release();
    }
    assert.equal(cache.size, 3);
    connections = 2;
    cache.lookup(join(root, 'c'))?.release();
    assert.equal(cache.size, 1, 'only one descriptor left for the cache');
    connections = 3;
    const d = opened(join(root, 'a'));
    cache.admit(join(root, 'a'), d);
    d.release();
    assert.equal(cache.size, 0, 'no room at all: nothing is kept');
  });

  test('bytes are kept only for settled small files, within the budget, oldest dropped first', (t) => {
    const root = tempRoot({ a: Buffer.alloc(100, 1), b: Buffer.alloc(100, 2), big: Buffer.alloc(SMALL_FILE + 1) }, t);
    const cache = new FileCache({ files: 10, bytes: 150 });
    const a = opened(join(root, 'a'));
    cache.admit(join(root, 'a'), a);
    const later = Date.now() + 10_000;
    cache.keepBytes(join(root, 'a'), a, Buffer.alloc(100, 1), Date.now());
    assert.equal(a.bytes, undefined, 'ctime within the last two seconds: not settled');
    cache.keepBytes(join(root, 'a'), a, Buffer.alloc(99, 1), later);
    assert.equal(a.bytes, undefined, 'not the whole file');
    cache.keepBytes(join(root, 'a'), a, Buffer.alloc(100, 1), later);
    assert.equal(cache.bytesInMemory, 100);
    const b = opened(join(root, 'b'));
    cache.keepBytes(join(root, 'b'), b, Buffer.alloc(100, 2), later);
    assert.equal(b.bytes, undefined, 'not an entry');
    cache.admit(join(root, 'b'), b);
    cache.keepBytes(join(root, 'b'), b, Buffer.alloc(100, 2), later);
    assert.equal(a.bytes, undefined, "a's bytes made room");
    assert.equal(keptBytes(b), 100);
    assert.equal(cache.bytesInMemory, 100);
    const big = opened(join(root, 'big'));
    cache.admit(join(root, 'big'), big);
    cache.keepBytes(join(root, 'big'), big, Buffer.alloc(SMALL_FILE + 1), later);
    assert.equal(big.bytes, undefined, 'too big');
    for (const f of [a, b, big]) f.release();
    cache.shed();
    assert.equal(cache.bytesInMemory, 0);
  });

  test('entries idle for the idle time are closed; the sweep stops when the cache is empty', async (t) => {
    const root = tempRoot({ a: '1', b: '2' }, t);
    let now = 1_000_000;
    const cache = new FileCache({ files: 10, bytes: 0, idleMs: 1000, now: () => now });
    const a = opened(join(root, 'a'));
    cache.admit(join(root, 'a'), a);
    a.release();
    now += 600;
    const b = opened(join(root, 'b'));
    cache.admit(join(root, 'b'), b);
    b.release();
    now += 500;
    cache.sweep();
    assert.equal(cache.size, 1, 'a is idle, b is not');
    now += 1000;
    cache.sweep();
    assert.equal(cache.size, 0);
    await b.closed;
    assert.ok(!isOpen(b));
    // The real timer (idle time / 2) does the same on its own.
    const real = new FileCache({ files: 10, bytes: 0, idleMs: 20 });
    const c = opened(join(root, 'a'));
    real.admit(join(root, 'a'), c);
    c.release();
    await eventually(() => real.size === 0, { what: 'the sweep' });
  });

  test('the descriptor limit comes from /proc/self/limits', () => {
    assert.equal(descriptorLimit('Max open files            20000                20000                files\n'), 20000);
    assert.equal(descriptorLimit('Max open files            unlimited            unlimited            files\n'), Infinity);
    assert.equal(descriptorLimit(''), undefined);
    assert.ok((descriptorLimit() ?? 0) > 0);
  });

  test('flags: the cache is on by default, sized by --file-cache-files and --file-cache-bytes', () => {
    assert.equal(DEFAULTS.fileCache, true);
    const on = parseArgs(['--file-cache-files', '8', '--file-cache-bytes', '1M', '/srv']);
    assert.ok(on.kind === 'serve');
    assert.equal(on.config.fileCacheFiles, 8);
    assert.equal(on.config.fileCacheBytes, 1024 * 1024);
    const cache = fileCacheFor(on.config, () => 0);
    assert.ok(cache instanceof FileCache);
    const off = parseArgs(['--no-file-cache'], { BOOTSERVE_FILE_CACHE_BYTES: '0' });
    assert.ok(off.kind === 'serve');
    assert.equal(off.config.fileCacheBytes, 0);
    assert.equal(fileCacheFor(off.config, () => 0), undefined);
    assert.throws(() => parseArgs(['--file-cache-bytes', '12X']), /invalid size/);
  });
});

/** A server with a cache that keeps bytes at once (no settling time: the tests write files just before). */
async function cachedServer(
  files: Record<string, string | Buffer>,
  limits: { files?: number; bytes?: number } = {},
): Promise<{ s: TestServer; cache: FileCache }> {
  const cache = new FileCache({ files: limits.files ?? 16, bytes: limits.bytes ?? 1024 * 1024, racyMs: -60_000 });
  const s = await startServer({ files, cache });
  return { s, cache };
}

/** Twice, so that the second answer came from the cache. */
async function warm(s: TestServer, cache: FileCache, path: string): Promise<void> {
  await fetch(`${s.url}${path}`);
  const hits = cache.hits;
  const r = await fetch(`${s.url}${path}`);
  assert.equal(r.status, 200);
  assert.equal(cache.hits, hits + 1, `${path} is a hit`);
}

describe('a server with the cache, between two requests that hit it', () => {
  const SMALL = 'small'.repeat(100);
  const BIG = randomBytes(3 * SMALL_FILE + 5);

  for (const [name, body] of [['small.ipxe', SMALL], ['big.iso', BIG]] as const) {
    describe(name === 'small.ipxe' ? 'a small file (bytes kept)' : 'a large file (descriptor kept)', () => {
      test('renamed over: the new file', async () => {
        const { s, cache } = await cachedServer({ [name]: body, next: `the next version of ${name}` });
        try {
          await warm(s, cache, `/${name}`);
          const before = await fetch(`${s.url}/${name}`);
          renameSync(join(s.root, 'next'), join(s.root, name));
          const r = await fetch(`${s.url}/${name}`);
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), `the next version of ${name}`);
          assert.notEqual(r.headers.etag, before.headers.etag);
          const again = await fetch(`${s.url}/${name}`);
          assert.equal(again.body.toString(), `the next version of ${name}`);
        } finally {
          await s.close();
        }
      });

      test('truncated: the shorter file, whole, never a short body', async () => {
        const { s, cache } = await cachedServer({ [name]: body });
        try {
          await warm(s, cache, `/${name}`);
          truncateSync(join(s.root, name), 100);
          const r = await fetch(`${s.url}/${name}`);
          assert.equal(r.status, 200);
          assert.equal(r.headers['content-length'], '100');
          assert.deepEqual(r.body, Buffer.from(body).subarray(0, 100));
          const range = await fetch(`${s.url}/${name}`, { headers: { Range: 'bytes=50-' } });
          assert.equal(range.status, 206);
          assert.equal(range.headers['content-range'], 'bytes 50-99/100');
          assert.deepEqual(range.body, Buffer.from(body).subarray(50, 100));
        } finally {
          await s.close();
        }
      });

      test('deleted: 404', async () => {
        const { s, cache } = await cachedServer({ [name]: body });
        try {
          await warm(s, cache, `/${name}`);
          unlinkSync(join(s.root, name));
          assert.equal((await fetch(`${s.url}/${name}`)).status, 404);
          assert.equal(cache.size, 0);
        } finally {
          await s.close();
        }
      });

      test('made unreadable: answered as a fresh open would be', async () => {
        const { s, cache } = await cachedServer({ [name]: body });
        try {
          await warm(s, cache, `/${name}`);
          const misses = cache.misses;
          chmodSync(join(s.root, name), 0o000);
          let readable = true; // root reads anything: then 200 is the right answer
          try {
            openSync(join(s.root, name), 'r');
          } catch {
            readable = false;
          }
          const r = await fetch(`${s.url}/${name}`);
          assert.equal(r.status, readable ? 200 : 403);
          assert.equal(cache.misses, misses + 1, 'the chmod changed the ctime: checked again');
        } finally {
          await s.close();
        }
      });

      test('replaced by a symlink to outside the root: 404', async () => {
        const { s, cache } = await cachedServer({ [name]: body });
        try {
          const outside = join(s.root, '..', `outside-${process.pid}-${name}`);
          writeFileSync(outside, 'secret outside the root');
          await warm(s, cache, `/${name}`);
          unlinkSync(join(s.root, name));
          symlinkSync(outside, join(s.root, name));
          assert.equal((await fetch(`${s.url}/${name}`)).status, 404);
          unlinkSync(outside);
        } finally {
          await s.close();
        }
      });
    });
  }

  test('a symlink inside the root that is turned to point outside: 404, also for a directory on the path', async (t) => {
    const { s, cache } = await cachedServer({ 'real/boot.ipxe': '#!ipxe\n', 'real/sub/x.cfg': 'inside' });
    try {
      const outside = tempRoot({ 'boot.ipxe': 'outside', 'sub/x.cfg': 'outside' }, t);
      symlinkSync('real/boot.ipxe', join(s.root, 'link.ipxe'));
      symlinkSync('real', join(s.root, 'dir'));
      await warm(s, cache, '/link.ipxe');
      await warm(s, cache, '/dir/sub/x.cfg');
      unlinkSync(join(s.root, 'link.ipxe'));
      symlinkSync(join(outside, 'boot.ipxe'), join(s.root, 'link.ipxe'));
      unlinkSync(join(s.root, 'dir'));
      symlinkSync(outside, join(s.root, 'dir'));
      assert.equal((await fetch(`${s.url}/link.ipxe`)).status, 404);
      assert.equal((await fetch(`${s.url}/dir/sub/x.cfg`)).status, 404);
      assert.equal((await fetch(`${s.url}/real/boot.ipxe`)).body.toString(), '#!ipxe\n');
    } finally {
      await s.close();
    }
  });

  test('HTTP semantics from cached files: conditionals, ranges, multipart, HEAD, empty files', async () => {
    const body = randomBytes(2 * SMALL_FILE);
    const { s, cache } = await cachedServer({ 'small.cfg': 'abcdefghij', 'big.img': body, 'empty.img': '' });
    try {
      await warm(s, cache, '/small.cfg');
      await warm(s, cache, '/big.img');
      await warm(s, cache, '/empty.img');
      const first = await fetch(`${s.url}/small.cfg`);
      assert.equal(first.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal((await fetch(`${s.url}/small.cfg`, { headers: { 'If-None-Match': first.headers.etag as string } })).status, 304);
      assert.equal((await fetch(`${s.url}/small.cfg`, { headers: { 'If-Match': '"other"' } })).status, 412);
      const r = await fetch(`${s.url}/small.cfg`, { headers: { Range: 'bytes=2-4' } });
      assert.equal(r.status, 206);
      assert.equal(r.body.toString(), 'cde');
      const multi = await fetch(`${s.url}/small.cfg`, { headers: { Range: 'bytes=0-0,8-9' } });
      assert.equal(multi.status, 206);
      assert.match(multi.body.toString(), /\r\n\r\na\r\n[\s\S]*\r\n\r\nij\r\n/);
      assert.equal((await fetch(`${s.url}/small.cfg`, { headers: { Range: 'bytes=50-' } })).status, 416);
      const head = await fetch(`${s.url}/big.img`, { method: 'HEAD' });
      assert.equal(head.headers['content-length'], String(body.length));
      assert.equal(head.body.length, 0);
      const range = await fetch(`${s.url}/big.img`, { headers: { Range: `bytes=${SMALL_FILE - 7}-${2 * SMALL_FILE - 8}` } });
      assert.deepEqual(range.body, body.subarray(SMALL_FILE - 7, 2 * SMALL_FILE - 7));
      const wide = await fetch(`${s.url}/big.img`, { headers: { Range: 'bytes=1-' } });
      assert.deepEqual(wide.body, body.subarray(1));
      const ranges = await fetch(`${s.url}/big.img`, { headers: { Range: 'bytes=0-1,100-101' } });
      assert.equal(ranges.status, 206);
      assert.ok(ranges.body.includes(body.subarray(100, 102)));
      const empty = await fetch(`${s.url}/empty.img`);
      assert.equal(empty.body.length, 0);
      assert.equal((await fetch(`${s.url}/../etc/passwd`)).status, 404);
      assert.equal((await fetch(`${s.url}/`)).status, 200);
    } finally {
      await s.close();
    }
  });

  test('descriptors in use stay within the cache limit plus the transfers in flight', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 20; i++) files[`f${i}.img`] = randomBytes(i % 2 ? 100 : 2 * SMALL_FILE);
    // Large enough that a client that does not read holds its transfer open.
    for (let i = 0; i < 3; i++) files[`held${i}.iso`] = randomBytes(8 * 1024 * 1024);
    const { s, cache } = await cachedServer(files, { files: 4 });
    try {
      const before = openFds();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 20; i++) await fetch(`${s.url}/f${i}.img`);
        assert.ok(cache.size <= 4);
        await eventually(() => assert.ok(openFds() <= before + 4, `${openFds()} open, ${before} before, cache limit 4`));
      }
      // Slow readers hold their transfers (and so their descriptors) open.
      const held = await Promise.all([0, 1, 2].map((i) => paused(`${s.url}/held${i}.iso`)));
      for (let i = 0; i < 20; i++) await fetch(`${s.url}/f${i}.img`);
      assert.equal(s.transfers.active.size, 3, 'three transfers in flight');
      // Each transfer in flight: its file and its connection (both ends: the client is this
      // process too); the cache 4, whatever it held before.
      const bound = before + 4 + 3 * held.length;
      await eventually(() => assert.ok(openFds() <= bound, `${openFds()} open, ${before} before`));
      for (const h of held) {
        const body = await h.finish();
        assert.equal(body.length, 8 * 1024 * 1024);
      }
      await eventually(() => assert.ok(openFds() <= before + 4, `${openFds()} open after the transfers, ${before} before`));
    } finally {
      await s.close();
    }
  });

  test('a transfer whose entry is evicted mid-stream completes with every byte', async () => {
    const big = randomBytes(8 * 1024 * 1024);
    const { s, cache } = await cachedServer({ 'big.iso': big, 'a.cfg': 'a', 'b.cfg': 'b' }, { files: 1 });
    try {
      const transfer = await paused(`${s.url}/big.iso`);
      assert.equal(cache.size, 1);
      await fetch(`${s.url}/a.cfg`); // evicts big.iso: the cache holds one file
      await fetch(`${s.url}/b.cfg`);
      await cache.shed();
      assert.equal(cache.size, 0);
      const body = await transfer.finish();
      assert.equal(sha(body), sha(big));
      const log = s.logs.find((l) => l.path === '/big.iso');
      assert.equal(log?.outcome, 'complete');
    } finally {
      await s.close();
    }
  });

  test('an iPXE binary from outside the root is served but not kept (its check would stat a path the root lacks)', async (t) => {
    const outside = tempRoot({ 'undionly.kpxe': 'iPXE binary' }, t);
    const cache = new FileCache({ files: 4, bytes: 1024 * 1024, racyMs: -60_000 });
    const s = await startServer({ files: { 'boot.ipxe': '#!ipxe\n' }, cache, tftp: true, tftpPort: 0, ipxeDir: outside });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await fetch(`${s.url}/ipxe/undionly.kpxe`)).body.toString(), 'iPXE binary');
      assert.equal(cache.size, 0);
      await fetch(`${s.url}/boot.ipxe`);
      assert.equal(cache.size, 1);
    } finally {
      await s.close();
    }
  });

  test('without the cache every request opens its file and closes it', async () => {
    const s = await startServer({ files: { 'a.cfg': 'a' }, fileCache: false });
    try {
      const before = openFds();
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${s.url}/a.cfg`)).body.toString(), 'a');
      await eventually(() => assert.ok(openFds() <= before, `${openFds()} open, ${before} before`));
    } finally {
      await s.close();
    }
  });

  test('made unreadable, for a server that is not root: 403 after the chmod', { timeout: 20_000 }, async (t: TestContext) => {
    const why = cannotRunAsNobody();
    if (why) return t.skip(why);
    const root = tempRoot({ 'boot.ipxe': '#!ipxe\n' }, t);
    chmodSync(root, 0o755);
    const child = spawn(process.execPath, [BIN, root, '--host', '127.0.0.1', '--port', '0'], {
      uid: 65534,
      gid: 65534,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    await eventually(() => assert.match(out, /listening on (http:\S+)/), { timeoutMs: 10_000 });
    const url = (/listening on (http:\S+)/.exec(out) as RegExpExecArray)[1] as string;
    assert.equal((await fetch(`${url}boot.ipxe`)).status, 200);
    assert.equal((await fetch(`${url}boot.ipxe`)).status, 200);
    chmodSync(join(root, 'boot.ipxe'), 0o000);
    assert.equal((await fetch(`${url}boot.ipxe`)).status, 403);
    chmodSync(join(root, 'boot.ipxe'), 0o644);
    assert.equal((await fetch(`${url}boot.ipxe`)).status, 200);
  });
});

/** A GET whose body is not read until finish(): the transfer stays in flight. */
function paused(url: string): Promise<{ finish: () => Promise<Buffer> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      res.pause();
      resolve({
        finish: () =>
          new Promise<Buffer>((done, fail) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => done(Buffer.concat(chunks)));
            res.on('error', fail);
            res.resume();
          }),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
