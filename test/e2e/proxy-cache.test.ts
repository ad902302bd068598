// nginx (Debian's package) as a caching reverse proxy in front of the built bootserve, the recipe
// of docs/caching.md: slice-wise caching of ranges, revalidation with bootserve's ETag (304),
// a changed artifact picked up after revalidation, several instances behind one upstream.
// Everything on 127.0.0.1; nginx runs in the foreground from a temporary prefix.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { BIN, freePort, get, have, KEEP_ROOT, sha256, skipOrFail, start, type Child } from '../helpers/tools.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
/** proxy_cache_valid in these tests: short, so that expiry and revalidation happen quickly. */
const VALID_S = 2;
/** nginx compares whole seconds: an entry is stale after VALID_S to VALID_S + 1 seconds. */
const EXPIRE_MS = (VALID_S + 1.5) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * Wait (at most 5 s) until `ready` holds, then 300 ms more: bootserve writes an access-log line
 * when it has finished a response, which can be after nginx has answered the client.
 */
async function settle(ready: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!ready() && Date.now() < deadline) await sleep(50);
  await sleep(300);
}

interface Access {
  path: string;
  status: number;
  bytesSent: number;
  userAgent: string;
}

interface Bootserve {
  child: Child;
  url: string;
  port: number;
  /** Access-log records (JSON lines) so far. */
  log(): Access[];
}

async function startBootserve(t: { after: (fn: () => Promise<void>) => void }, root: string): Promise<Bootserve> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(BOOTSERVE_|LISTEN_|PORT$)/.test(k)) delete env[k];
  const child = start(
    process.execPath,
    [BIN, ...KEEP_ROOT, root, '--host', '127.0.0.1', '--port', '0', '--log-format', 'json', '--shutdown-grace', '1s'],
    { env },
  );
  t.after(() => child.stop());
  const banner = await child.waitForLine(/listening on http:\/\/127\.0\.0\.1:\d+\//, 30_000);
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(banner)?.[1]);
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    log: () => child.lines.filter((l) => l.includes('"status"')).map((l) => JSON.parse(l) as Access),
  };
}

/** The server block of docs/caching.md, with test paths and ports. */
function nginxConfig(prefix: string, listen: number, upstream: string): string {
  return `
${process.getuid?.() === 0 ? 'user root;' : ''}
daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log info;
events { worker_connections 256; }
http {
  log_format cache '$request_uri range="$http_range" $status cache=$upstream_cache_status upstream=$upstream_status';
  access_log ${prefix}/logs/access.log cache;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;

  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=netboot:10m max_size=1g inactive=7d use_temp_path=off;

  ${upstream}

  server {
    listen 127.0.0.1:${listen};

    location / {
      proxy_pass http://bootserve;
      proxy_http_version 1.1;
      proxy_set_header Connection "";

      slice 1m;
      proxy_cache netboot;
      proxy_cache_key $uri$is_args$args$slice_range;
      proxy_set_header Range $slice_range;
      proxy_cache_valid 200 206 ${VALID_S}s;
      proxy_ignore_headers Cache-Control Expires;
      proxy_cache_revalidate on;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status always;
    }

    location /-/ {
      proxy_pass http://bootserve;
      proxy_cache off;
    }
  }
}
`;
}

interface Nginx {
  url: string;
  prefix: string;
}

async function startNginx(t: { after: (fn: () => Promise<void>) => void }, upstream: string): Promise<Nginx> {
  const prefix = tempDir(t, 'bootserve-nginx-');
  for (const d of ['logs', 'tmp', 'cache']) mkdirSync(join(prefix, d));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(join(prefix, 'nginx.conf'), nginxConfig(prefix, port, upstream));
    const child = start('nginx', ['-p', prefix, '-e', join(prefix, 'logs', 'error.log'), '-c', join(prefix, 'nginx.conf')]);
    t.after(() => child.stop());
    const up = () =>
      new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
    await eventually(async () => child.proc.exitCode !== null || (await up()), { timeoutMs: 15_000, what: 'nginx to listen' });
    if (child.proc.exitCode === null) return { url: `http://127.0.0.1:${port}`, prefix };
    const err = readFileSync(join(prefix, 'logs', 'error.log'), 'utf8') + child.stderr();
    if (attempt < 3 && /in use/.test(err)) continue;
    assert.fail(`nginx did not start: ${err}`);
  }
}

/** Why nginx cannot run this recipe here, or undefined when it can. */
function nginxProblem(): string | undefined {
  if (!have('nginx', ['-v'])) return 'nginx not found (install it: apt-get install nginx)';
  const v = spawnSync('nginx', ['-V'], { encoding: 'utf8', timeout: 10_000 });
  if (!/with-http_slice_module/.test(`${v.stderr}${v.stdout}`)) return 'this nginx build lacks the slice module (--with-http_slice_module)';
  return undefined;
}

/** nginx with the slice module, or a skip (a failure under BOOTSERVE_E2E=required). */
function nginxUsable(t: TestContext): boolean {
  const problem = nginxProblem();
  if (problem !== undefined) skipOrFail(t, problem);
  return problem === undefined;
}

const PROXY = { 'User-Agent': 'via-proxy' };
const DIRECT = { 'User-Agent': 'direct' };

describe('nginx caching proxy in front of bootserve', () => {
  const files = {
    'vmlinuz': randomBytes(3 * MiB + 17),
    'initrd.img': randomBytes(5 * MiB + 123),
    'small.ipxe': Buffer.from('#!ipxe\necho hello\n'),
  };
  let root: string;
  let bs: Bootserve | undefined;
  let proxy: Nginx | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  const hooks = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };

  before(async () => {
    if (nginxProblem() !== undefined) return;
    root = tempDir(hooks, 'bootserve-proxy-root-');
    for (const [name, body] of Object.entries(files)) writeFileSync(join(root, name), body);
    bs = await startBootserve(hooks, root);
    proxy = await startNginx(hooks, `upstream bootserve { server 127.0.0.1:${bs.port}; keepalive 8; }`);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  /** Upstream responses bootserve sent for nginx (User-Agent via-proxy) for `path`. */
  const upstreamFor = (path: string) => (bs as Bootserve).log().filter((r) => r.path === `/${path}` && r.userAgent === 'via-proxy');

  test('full GETs through the cache: identical bytes, each slice fetched once', { timeout: 60_000 }, async (t) => {
    if (!nginxUsable(t)) return;
    const { url } = proxy as Nginx;
    for (const [name, body] of Object.entries(files)) {
      const direct = await get(`${(bs as Bootserve).url}/${name}`, DIRECT);
      assert.equal(sha256(direct.body), sha256(body));
      const first = await get(`${url}/${name}`, PROXY);
      const second = await get(`${url}/${name}`, PROXY);
      for (const r of [first, second]) {
        assert.equal(r.status, 200, name);
        assert.equal(sha256(r.body), sha256(direct.body), name);
        assert.equal(r.headers.etag, direct.headers.etag, `${name}: bootserve's ETag is passed on`);
        assert.equal(r.headers['content-length'], String(body.length));
      }
      // Transferred from bootserve once per 1 MiB slice; anything else was a cache hit or a 304.
      const slices = Math.ceil(body.length / MiB);
      // bootserve logs a response when it has finished it, possibly after nginx has answered.
      await settle(() => upstreamFor(name).filter((r) => r.bytesSent > 0).length >= slices);
      const sent = upstreamFor(name).filter((r) => r.bytesSent > 0);
      assert.equal(sent.length, slices, `${name}: ${JSON.stringify(upstreamFor(name))}`);
      assert.ok(upstreamFor(name).every((r) => r.bytesSent > 0 ? r.status === 206 || r.status === 200 : r.status === 304));
    }
  });

  test('ranges through the cache equal direct ranges (curl-style, and iPXE-like 64 KiB series)', { timeout: 120_000 }, async (t) => {
    if (!nginxUsable(t)) return;
    const { url } = proxy as Nginx;
    const body = files['initrd.img'];
    const size = body.length;
    const ranges = [
      'bytes=0-0',
      'bytes=100-199',
      `bytes=${MiB - 1000}-${MiB + 1000}`,
      `bytes=${2 * MiB}-${3 * MiB - 1}`,
      'bytes=-500',
      `bytes=${size - 10}-`,
      `bytes=4000000-`,
    ];
    for (const range of ranges) {
      const direct = await get(`${(bs as Bootserve).url}/initrd.img`, { ...DIRECT, Range: range });
      const via = await get(`${url}/initrd.img`, { ...PROXY, Range: range });
      assert.equal(direct.status, 206, range);
      assert.equal(via.status, 206, range);
      assert.equal(via.headers['content-range'], direct.headers['content-range'], range);
      assert.equal(sha256(via.body), sha256(direct.body), range);
    }
    // iPXE-like: consecutive 64 KiB ranges, aligned and (crossing slice boundaries) misaligned.
    for (const startAt of [0, 1000]) {
      const parts: Buffer[] = [];
      for (let at = startAt; at < size; at += 65536) {
        const end = Math.min(at + 65535, size - 1);
        const r = await get(`${url}/initrd.img`, { ...PROXY, Range: `bytes=${at}-${end}` });
        assert.equal(r.status, 206);
        assert.equal(r.headers['content-range'], `bytes ${at}-${end}/${size}`);
        parts.push(r.body);
      }
      assert.equal(sha256(Buffer.concat(parts)), sha256(body.subarray(startAt)), `64 KiB series from ${startAt}`);
    }
    // Everything came from at most one transfer per slice (others: hits, or 304 revalidations).
    const sent = upstreamFor('initrd.img').filter((r) => r.bytesSent > 0);
    assert.ok(sent.length <= Math.ceil(size / MiB), `slices transferred: ${sent.length}`);
  });

  test('revalidation: an expired entry costs a conditional request that bootserve answers 304', { timeout: 60_000 }, async (t) => {
    if (!nginxUsable(t)) return;
    const { url } = proxy as Nginx;
    const name = 'vmlinuz';
    await get(`${url}/${name}`, PROXY); // cached (again) by now
    await sleep(EXPIRE_MS);
    const before = upstreamFor(name).length;
    const again = await get(`${url}/${name}`, PROXY);
    assert.equal(sha256(again.body), sha256(files[name]));
    assert.equal(again.headers['x-cache-status'], 'REVALIDATED');
    await settle(() => upstreamFor(name).length - before >= Math.ceil(files[name].length / MiB));
    const fresh = upstreamFor(name).slice(before);
    assert.equal(fresh.length, Math.ceil(files[name].length / MiB), `one conditional request per slice: ${JSON.stringify(fresh)}`);
    assert.ok(fresh.every((r) => r.status === 304 && r.bytesSent === 0), `all 304, no bytes: ${JSON.stringify(fresh)}`);
    // Still fresh right after: no request to bootserve at all.
    await settle(() => true);
    const n = upstreamFor(name).length;
    const hit = await get(`${url}/${name}`, PROXY);
    if (hit.headers['x-cache-status'] === 'HIT') assert.equal(upstreamFor(name).length, n);
  });

  test('a changed artifact (new ETag) is picked up through the proxy after revalidation', { timeout: 60_000 }, async (t) => {
    if (!nginxUsable(t)) return;
    const { url } = proxy as Nginx;
    const name = 'vmlinuz';
    const old = await get(`${url}/${name}`, PROXY);
    // Rewritten in place, same size: only the mtime part of the ETag changes.
    const inPlace = randomBytes(files[name].length);
    writeFileSync(join(root, name), inPlace);
    const direct = await get(`${(bs as Bootserve).url}/${name}`, DIRECT);
    assert.notEqual(direct.headers.etag, old.headers.etag);
    await sleep(EXPIRE_MS);
    const via = await get(`${url}/${name}`, PROXY);
    assert.equal(via.headers.etag, direct.headers.etag);
    assert.equal(sha256(via.body), sha256(inPlace));
    const r = await get(`${url}/${name}`, { ...PROXY, Range: 'bytes=1048000-1049000' });
    assert.ok(r.body.equals(inPlace.subarray(1048000, 1049001)));
    // Replaced by rename (new inode, new size), as deployment tools do.
    const renamed = randomBytes(2 * MiB + 5);
    writeFileSync(join(root, `${name}.new`), renamed);
    renameSync(join(root, `${name}.new`), join(root, name));
    await sleep(EXPIRE_MS);
    const via2 = await get(`${url}/${name}`, PROXY);
    assert.equal(via2.headers['content-length'], String(renamed.length));
    assert.equal(sha256(via2.body), sha256(renamed));
  });

  test('several bootserve instances behind one upstream (hash $uri consistent), each with its own copy', { timeout: 90_000 }, async (t) => {
    if (!nginxUsable(t)) return;
    // Two "hosts": separate copies of the artifacts, same contents and mtimes, different inodes
    // (hence different ETags: bootserve's ETag includes the inode).
    const body = randomBytes(4 * MiB + 99);
    const roots = [0, 1].map(() => tempDir(t, 'bootserve-replica-'));
    const mtime = new Date(Date.now() - 60_000);
    for (const r of roots) {
      writeFileSync(join(r, 'rootfs.img'), body);
      copyFileSync(join(root, 'small.ipxe'), join(r, 'small.ipxe'));
      utimesSync(join(r, 'rootfs.img'), mtime, mtime);
    }
    assert.notEqual(statSync(join(roots[0] as string, 'rootfs.img')).ino, statSync(join(roots[1] as string, 'rootfs.img')).ino);
    const instances = [await startBootserve(t, roots[0] as string), await startBootserve(t, roots[1] as string)];
    const lb = await startNginx(
      t,
      `upstream bootserve { hash $uri consistent; ` +
      `${instances.map((i) => `server 127.0.0.1:${i.port} max_fails=1 fail_timeout=5s;`).join(' ')}` +
      ` keepalive 8; }`,
    );
    for (let i = 0; i < 2; i++) {
      const r = await get(`${lb.url}/rootfs.img`, PROXY);
      assert.equal(r.status, 200);
      assert.equal(sha256(r.body), sha256(body));
      const range = await get(`${lb.url}/rootfs.img`, { ...PROXY, Range: `bytes=${MiB - 7}-${3 * MiB + 7}` });
      assert.ok(range.body.equals(body.subarray(MiB - 7, 3 * MiB + 8)));
    }
    // All slices of one URI came from one instance, so their ETags agree.
    await settle(() => true);
    const served = instances.map((i) => i.log().filter((r) => r.path === '/rootfs.img').length);
    assert.ok(served.filter((n) => n > 0).length === 1, `one instance serves /rootfs.img: ${served.join(', ')}`);
    // That instance goes away: after expiry the other one takes over (its ETag differs, so
    // nginx's conditional request gets a full 200 per slice) and the bytes stay right.
    const owner = served.findIndex((n) => n > 0);
    await (instances[owner] as Bootserve).child.stop();
    await sleep(EXPIRE_MS);
    const failover = await get(`${lb.url}/rootfs.img`, PROXY);
    assert.equal(failover.status, 200);
    assert.equal(sha256(failover.body), sha256(body));
    await settle(() => (instances[1 - owner] as Bootserve).log().some((r) => r.path === '/rootfs.img'));
    assert.ok((instances[1 - owner] as Bootserve).log().some((r) => r.path === '/rootfs.img'), 'the other instance answered');
  });
});
