// HTTP semantics over real sockets: what iPXE, UEFI HTTP Boot, curl and browsers rely on.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { errorReply } from '../../lib/http/handler.js';
import type { Logger } from '../../lib/observe/log.js';
import { fetch, raw, startServer, type TestServer } from '../helpers/server.js';
import { tempDir, tempRoot, writeFiles } from '../helpers/temp.js';

const BIG = randomBytes(3 * 1024 * 1024 + 17);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('serving files', () => {
  let s: TestServer;
  // The root inside a folder of its own, beside a file it must not reach.
  const base = tempDir({ after });
  before(async () => {
    const root = join(base, 'root');
    writeFiles(root, {
      'boot.ipxe': '#!ipxe\nchain next.ipxe\n',
      'big.bin': BIG,
      'empty.img': '',
      'grub.cfg': 'x',
      'shim.efi': 'MZ',
      'debian.iso': 'iso',
      'page.html': '<p>',
      'blob.xyz': 'b',
      'sub/dir/vmlinuz': 'kernel',
      '.secret': 'no',
      '.git/config': 'no',
      'a b.txt': 'space',
    });
    writeFileSync(join(base, 'outside'), 'outside');
    symlinkSync(join(base, 'outside'), join(root, 'escape'));
    symlinkSync('/etc', join(root, 'etc'));
    s = await startServer({ root });
  });
  after(() => s.close());

  test('GET: exact Content-Length, validators, no-cache, no chunking', async () => {
    const r = await fetch(`${s.url}/big.bin`);
    assert.equal(r.status, 200);
    assert.equal(sha(r.body), sha(BIG));
    assert.equal(r.headers['content-length'], String(BIG.length));
    assert.equal(r.headers['transfer-encoding'], undefined);
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.match(r.headers.etag ?? '', /^"[^"]+"$/);
    assert.ok(Date.parse(r.headers['last-modified'] ?? '') > 0);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
  });

  test('content types suited to boot artifacts', async () => {
    const types: Record<string, string> = {
      '/boot.ipxe': 'text/plain; charset=utf-8',
      '/grub.cfg': 'text/plain; charset=utf-8',
      '/shim.efi': 'application/efi',
      '/debian.iso': 'application/vnd.efi-iso',
      '/empty.img': 'application/vnd.efi-img',
      '/page.html': 'text/html; charset=utf-8',
      '/blob.xyz': 'application/octet-stream',
    };
    for (const [path, type] of Object.entries(types)) assert.equal((await fetch(s.url + path)).headers['content-type'], type, path);
  });

  test('an empty file is 200 with Content-Length 0', async () => {
    const r = await fetch(`${s.url}/empty.img`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '0');
    assert.equal(r.body.length, 0);
  });

  test("HEAD: exactly GET's headers and no body", async () => {
    const get = await fetch(`${s.url}/big.bin`, { headers: { range: 'bytes=0-99' } });
    const logged = s.nextLog('/big.bin?head');
    const head = await fetch(`${s.url}/big.bin?head`, { method: 'HEAD', headers: { range: 'bytes=0-99' } });
    assert.equal(head.body.length, 0);
    const strip = (h: Record<string, unknown>) => ({ ...h, date: undefined });
    assert.deepEqual(strip(head.headers), strip(get.headers));
    const log = await logged;
    assert.equal(log.method, 'HEAD');
    assert.equal(log.bytesSent, 0);
  });

  test('other methods: 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await fetch(`${s.url}/big.bin`, { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
      assert.match(r.body.toString(), /405/);
    }
  });

  test('Range a-b, a-, -n: 206 with Content-Range', async () => {
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=1000-', 1000, BIG.length - 1],
      ['bytes=-500', BIG.length - 500, BIG.length - 1],
      ['bytes=10-18446744073709551615', 10, BIG.length - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await fetch(`${s.url}/big.bin`, { headers: { range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${BIG.length}`);
      assert.equal(r.headers['content-length'], String(end - start + 1));
      assert.ok(r.body.equals(BIG.subarray(start, end + 1)), range);
    }
  });

  test('unsatisfiable: 416 with bytes */size; invalid syntax: ignored', async () => {
    const r = await fetch(`${s.url}/big.bin`, { headers: { range: `bytes=${BIG.length}-` } });
    assert.equal(r.status, 416);
    assert.equal(r.headers['content-range'], `bytes */${BIG.length}`);
    const ignored = await fetch(`${s.url}/boot.ipxe`, { headers: { range: 'bytes=5-1' } });
    assert.equal(ignored.status, 200);
    assert.equal(ignored.body.toString(), '#!ipxe\nchain next.ipxe\n');
  });

  test('several ranges: multipart/byteranges, coalesced, exact length, parsed back', async () => {
    const r = await fetch(`${s.url}/big.bin`, { headers: { range: 'bytes=500-599,0-99,100-199,-10' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-length'], String(r.body.length));
    const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(r.headers['content-type'] ?? '');
    assert.ok(m, r.headers['content-type']);
    const parts = parseMultipart(r.body, m[1] as string);
    assert.deepEqual(
      parts.map((p) => p.range),
      [`bytes 0-199/${BIG.length}`, `bytes 500-599/${BIG.length}`, `bytes ${BIG.length - 10}-${BIG.length - 1}/${BIG.length}`],
    );
    assert.ok(parts[0]?.body.equals(BIG.subarray(0, 200)));
    assert.ok(parts[1]?.body.equals(BIG.subarray(500, 600)));
    assert.ok(parts[2]?.body.equals(BIG.subarray(BIG.length - 10)));
    for (const p of parts) assert.equal(p.type, 'application/octet-stream');
  });

  test('Apache Killer: the whole file, sent once', async () => {
    const header = 'bytes=0-,' + Array.from({ length: 1200 }, (_, i) => `5-${i}`).join(',');
    const r = await fetch(`${s.url}/big.bin`, { headers: { range: header } });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, BIG.length);
  });

  test('conditionals: 304, 412, and If-Range choosing 206 or 200', async () => {
    const first = await fetch(`${s.url}/big.bin`, { method: 'HEAD' });
    const etag = first.headers.etag as string;
    const lm = first.headers['last-modified'] as string;
    const notModified = await fetch(`${s.url}/big.bin`, { headers: { 'if-none-match': etag } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body.length, 0);
    assert.equal(notModified.headers.etag, etag);
    assert.equal((await fetch(`${s.url}/big.bin`, { headers: { 'if-modified-since': lm } })).status, 304);
    assert.equal((await fetch(`${s.url}/big.bin`, { headers: { 'if-none-match': '"other"' } })).status, 200);
    assert.equal((await fetch(`${s.url}/big.bin`, { method: 'HEAD', headers: { 'if-match': '"other"' } })).status, 412);
    assert.equal(
      (await fetch(`${s.url}/big.bin`, { method: 'HEAD', headers: { 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' } })).status,
      412,
    );
    assert.equal((await fetch(`${s.url}/big.bin`, { method: 'HEAD', headers: { 'if-match': etag } })).status, 200);
    const ranged = (h: Record<string, string>) => fetch(`${s.url}/big.bin`, { method: 'HEAD', headers: { range: 'bytes=0-9', ...h } });
    assert.equal((await ranged({ 'if-range': etag })).status, 206);
    assert.equal((await ranged({ 'if-range': lm })).status, 206);
    assert.equal((await ranged({ 'if-range': '"stale"' })).status, 200);
    assert.equal((await ranged({ 'if-range': 'Thu, 01 Jan 1970 00:00:00 GMT' })).status, 200);
  });

  test('traversal, encoded and double-encoded, and symlink escapes never leave the root', async () => {
    const notFound = [
      '/../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/%252e%252e/etc/passwd',
      '/sub/..%2f..%2fetc',
      '/escape',
      '/etc/passwd',
      '/..\\..\\etc\\passwd',
      '/.secret',
      '/.git/config',
      '/sub/%2e%2e/%2e%2e/x',
    ];
    for (const path of notFound) {
      const r = await rawStatus(s.port, path);
      assert.ok(r === 404 || r === 400, `${path}: ${r}`);
      if (!path.includes('%2f')) assert.equal(r, 404, path);
    }
    for (const path of ['/a%00b', '/sub%2fdir', '/sub%5cdir']) assert.equal(await rawStatus(s.port, path), 400, path);
  });

  test('query strings are ignored; names are percent-decoded', async () => {
    assert.equal((await fetch(`${s.url}/boot.ipxe?mac=52:54:00:12:34:56`)).status, 200);
    assert.equal((await fetch(`${s.url}/a%20b.txt`)).body.toString(), 'space');
    assert.equal((await fetch(`${s.url}/sub/dir/vmlinuz`)).body.toString(), 'kernel');
  });

  test('directories: redirect to the slash form, then a listing in HTML or JSON', async () => {
    const redirect = await fetch(`${s.url}/sub?x=1`);
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/sub/?x=1');
    const html = await fetch(`${s.url}/sub/dir/`);
    assert.equal(html.status, 200);
    assert.match(html.headers['content-type'] ?? '', /text\/html/);
    assert.match(html.body.toString(), /href="vmlinuz">vmlinuz<\/a><\/td><td class="size" title="6 bytes">6 B</);
    const json = await fetch(`${s.url}/`, { headers: { accept: 'application/json' } });
    const entries = JSON.parse(json.body.toString()) as { name: string; type: string; size: number; mtime: string }[];
    const names = entries.map((e) => e.name);
    assert.ok(names.includes('big.bin') && names.includes('sub'));
    assert.ok(!names.includes('.secret') && !names.includes('escape') && !names.includes('etc'));
    const big = entries.find((e) => e.name === 'big.bin');
    assert.equal(big?.size, BIG.length);
    assert.ok(Date.parse(big?.mtime ?? '') > 0);
  });

  test('the admin prefix is never read from the directory', async () => {
    assert.equal((await fetch(`${s.url}/-/anything`)).status, 404);
  });

  test('keep-alive: several requests on one connection; HTTP/1.0 works', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        request(`${s.url}/boot.ipxe`, { agent }, (res) => {
          ports.add(res.socket.localPort ?? 0);
          assert.equal(res.headers['keep-alive'], 'timeout=15');
          res.resume().on('end', resolve);
        })
          .on('error', reject)
          .end();
      });
    }
    agent.destroy();
    assert.equal(ports.size, 1);
    const reply = await raw(s.port, 'GET /boot.ipxe HTTP/1.0\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(reply, /Content-Length: 23\r\n/);
    assert.match(reply, /\r\n\r\n#!ipxe\nchain next.ipxe\n$/);
  });

  test('a request with a body is answered and its connection closed', async () => {
    const reply = await raw(s.port, 'GET /boot.ipxe HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    assert.match(reply, /Connection: close/);
  });

  test('malformed requests get 400, never a crash', async () => {
    assert.match(await raw(s.port, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(s.port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.equal((await fetch(`${s.url}/boot.ipxe`)).status, 200);
  });

  test('the access log records every response with its outcome', async () => {
    const logged = s.nextLog('/boot.ipxe?agent');
    await fetch(`${s.url}/boot.ipxe?agent`, { headers: { 'user-agent': 'iPXE/1.21.1' } });
    const entry = await logged;
    assert.equal(entry.userAgent, 'iPXE/1.21.1');
    assert.equal(entry.status, 200);
    assert.equal(entry.outcome, 'complete');
    assert.equal(entry.bytesSent, 23);
    assert.equal(entry.bytesDue, 23);
    assert.equal(entry.client, '127.0.0.1');
    assert.equal(entry.path, '/boot.ipxe?agent');
  });
});

describe('files that change while they are served', () => {
  test('replaced by rename during a transfer: the old bytes, never a mix', async () => {
    const oldBody = randomBytes(8 * 1024 * 1024);
    const s = await startServer({ files: { 'initrd.img': oldBody, 'next.img': randomBytes(oldBody.length) } });
    try {
      const body = await new Promise<Buffer>((resolve, reject) => {
        request(`${s.url}/initrd.img`, { agent: false }, (res) => {
          const chunks: Buffer[] = [];
          let renamed = false;
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            if (!renamed) {
              renamed = true;
              renameSync(join(s.root, 'next.img'), join(s.root, 'initrd.img'));
            }
          });
          res.on('end', () => resolve(Buffer.concat(chunks)));
        })
          .on('error', reject)
          .end();
      });
      assert.equal(sha(body), sha(oldBody));
    } finally {
      await s.close();
    }
  });

  test('truncated during a transfer: the connection is destroyed, not a short body or a hang', async () => {
    const s = await startServer({ files: { 'shrinks.img': randomBytes(32 * 1024 * 1024) } });
    try {
      const logged = s.nextLog('/shrinks.img');
      const outcome = await new Promise<string>((resolve) => {
        const req = request(`${s.url}/shrinks.img`, { agent: false }, (res) => {
          let got = 0;
          res.once('data', () => {
            truncateSync(join(s.root, 'shrinks.img'), 1024 * 1024);
          });
          res.on('data', (c: Buffer) => (got += c.length));
          res.on('end', () => resolve(`end after ${got}`));
          res.on('aborted', () => resolve('aborted'));
          res.on('error', () => resolve('aborted'));
        });
        req.on('error', () => resolve('aborted'));
        req.end();
      });
      assert.equal(outcome, 'aborted');
      const entry = await logged;
      assert.equal(entry.outcome, 'read-error');
      assert.ok(entry.bytesSent < entry.bytesDue);
    } finally {
      await s.close();
    }
  });
});

test('--no-listing and --dotfiles', async (t) => {
  const root = tempRoot({ 'd/f': 'x', '.well-known/x': 'hidden' }, t);
  mkdirSync(join(root, 'empty'));
  const s = await startServer({ root, listing: false, dotfiles: true });
  try {
    assert.equal((await fetch(`${s.url}/d/`)).status, 404);
    assert.equal((await fetch(`${s.url}/`)).status, 404);
    assert.equal((await fetch(`${s.url}/.well-known/x`)).body.toString(), 'hidden');
  } finally {
    await s.close();
  }
});

test('a generated boot.ipxe is served when the directory has none', async () => {
  const s = await startServer({ files: { 'vmlinuz': 'k' } });
  try {
    const r = await fetch(`${s.url}/boot.ipxe`);
    assert.equal(r.status, 200);
    assert.match(r.body.toString(), /^#!ipxe\n[^]*vmlinuz/);
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    writeFileSync(join(s.root, 'boot.ipxe'), '#!ipxe\necho mine\n');
    assert.equal((await fetch(`${s.url}/boot.ipxe`)).body.toString(), '#!ipxe\necho mine\n');
  } finally {
    await s.close();
  }
});

test('file-system errors map to 404, 403, 503 with Retry-After, else 500 and a log line', () => {
  const lines: string[] = [];
  const logger: Logger = { access: () => {}, info: () => {}, error: (m) => lines.push(m) };
  const err = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(errorReply(err('ENOENT'), logger, '/x').status, 404);
  assert.equal(errorReply(err('ENOTDIR'), logger, '/x').status, 404);
  assert.equal(errorReply(err('EACCES'), logger, '/x').status, 403);
  const busy = errorReply(err('EMFILE'), logger, '/x');
  assert.equal(busy.status, 503);
  assert.equal(busy.headers['Retry-After'], '5');
  assert.equal(errorReply(err('ENFILE'), logger, '/x').status, 503);
  assert.equal(errorReply(err('EIO'), logger, '/x').status, 500);
  assert.equal(lines.length, 3);
  assert.match(lines[2] as string, /EIO/);
});

/** Status of a request sent byte-for-byte as written (no client-side normalisation). */
async function rawStatus(port: number, path: string): Promise<number> {
  const reply = await raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  return Number(/^HTTP\/1\.1 (\d+)/.exec(reply)?.[1]);
}

function parseMultipart(body: Buffer, boundary: string): { range: string; type: string; body: Buffer }[] {
  const text = body.toString('latin1');
  const chunks = text.split(`--${boundary}`);
  assert.equal(chunks.at(-1), '--\r\n');
  return chunks.slice(1, -1).map((chunk) => {
    const [head, ...rest] = chunk.replace(/^\r\n/, '').split('\r\n\r\n');
    const content = rest.join('\r\n\r\n').replace(/\r\n$/, '');
    const headers = Object.fromEntries(
      (head ?? '')
        .split('\r\n')
        .map((l) => l.split(': ').map((x) => x.trim()) as [string, string])
        .map(([k, v]) => [k.toLowerCase(), v]),
    );
    return { range: headers['content-range'] as string, type: headers['content-type'] as string, body: Buffer.from(content, 'latin1') };
  });
}
