// Real TFTP clients from Debian's packages against the built command: tftp-hpa's tftp, atftp
// and curl (tftp://, --tftp-blksize), byte for byte.
import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { eventually } from '../helpers/eventually.js';
import { tempDir, tempRoot } from '../helpers/temp.js';
import { download } from '../helpers/tftp.js';
import { BIN, KEEP_ROOT, need, sha256, start, type Child } from '../helpers/tools.js';

const execFile = promisify(execFileCb);
const run = (cmd: string, args: string[]) => execFile(cmd, args, { encoding: 'buffer', timeout: 60_000 });

/** A UDP port nobody uses right now. */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(r));
  return port;
}

// The real iPXE binary when the ipxe package is there; the same bytes-for-bytes check otherwise.
const UNDIONLY = '/usr/lib/ipxe/undionly.kpxe';
const files = { 'initrd.img': randomBytes(3 * 1024 * 1024 + 5), 'ipxe/snponly.efi': randomBytes(200_000) };

describe('real TFTP clients against bootserve --tftp', () => {
  let child: Child | undefined;
  let port: number;
  after(() => child?.stop());
  const root = tempRoot(files, { after });
  const out = tempDir({ after }, 'bootserve-tftp-out-');
  const want = (name: string) => sha256(readFileSync(join(root, name)));

  before(async () => {
    if (existsSync(UNDIONLY)) copyFileSync(UNDIONLY, join(root, 'undionly.kpxe'));
    else copyFileSync(join(root, 'initrd.img'), join(root, 'undionly.kpxe'));
    port = await freeUdpPort();
    child = start(process.execPath, [BIN, ...KEEP_ROOT, root, '--tftp', '--tftp-port', String(port), '--port', '0', '--host', '127.0.0.1']);
    await child.waitForLine(/TFTP on UDP port/, 10_000);
  });

  test("tftp-hpa's tftp: octet download", async (t) => {
    if (!need(t, 'tftp', 'tftp-hpa', ['-V'])) return;
    for (const name of ['undionly.kpxe', 'initrd.img']) {
      const dest = join(out, `hpa-${name}`);
      await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', name, dest]);
      assert.equal(sha256(readFileSync(dest)), want(name), name);
    }
  });

  test('atftp: plain, then blksize 1468 + windowsize 16 + tsize, and a backslash path', async (t) => {
    if (!need(t, 'atftp', 'atftp')) return;
    const plain = join(out, 'atftp-plain');
    await run('atftp', ['-g', '-r', 'undionly.kpxe', '-l', plain, '127.0.0.1', String(port)]);
    assert.equal(sha256(readFileSync(plain)), want('undionly.kpxe'));
    const windowed = join(out, 'atftp-window');
    await run('atftp', [
      '--option',
      'blksize 1468',
      '--option',
      'windowsize 16',
      '--option',
      'tsize',
      '-g',
      '-r',
      'initrd.img',
      '-l',
      windowed,
      '127.0.0.1',
      String(port),
    ]);
    assert.equal(sha256(readFileSync(windowed)), want('initrd.img'));
    const slashed = join(out, 'atftp-backslash');
    await run('atftp', ['-g', '-r', '\\ipxe\\snponly.efi', '-l', slashed, '127.0.0.1', String(port)]);
    assert.equal(sha256(readFileSync(slashed)), want('ipxe/snponly.efi'));
  });

  test('curl: tftp:// with default and 1468-byte blocks; a missing file fails', async (t) => {
    if (!need(t, 'curl', 'curl')) return;
    for (const args of [[], ['--tftp-blksize', '1468']]) {
      const dest = join(out, `curl-${args.length}`);
      await run('curl', ['-sSf', ...args, '-o', dest, `tftp://127.0.0.1:${port}/undionly.kpxe`]);
      assert.equal(sha256(readFileSync(dest)), want('undionly.kpxe'));
    }
    const big = join(out, 'curl-big');
    await run('curl', ['-sSf', '--tftp-blksize', '1468', '-o', big, `tftp://127.0.0.1:${port}/initrd.img`]);
    assert.equal(sha256(readFileSync(big)), want('initrd.img'));
    await assert.rejects(run('curl', ['-sSf', '-o', join(out, 'none'), `tftp://127.0.0.1:${port}/missing.efi`]));
  });

  // Its own transfers (by the test's client: no tool to miss), so it stands alone.
  test('every transfer is in the access log, with the block and window size it used', async () => {
    const lines = () => (child?.lines ?? []).filter((l) => / TFTP "/.test(l));
    const plain = await download(port, 'undionly.kpxe');
    const windowed = await download(port, 'initrd.img', { blksize: 1468, windowsize: 16, tsize: 0 });
    assert.equal(sha256(plain.data), want('undionly.kpxe'));
    assert.equal(sha256(windowed.data), want('initrd.img'));
    const size = readFileSync(join(root, 'undionly.kpxe')).length;
    const plainLine = new RegExp(`"undionly\\.kpxe" - ${size}/${size} \\d+ms complete blksize=512 windowsize=1 `);
    const windowedLine = /"initrd\.img" - 3145733\/3145733 \d+ms complete blksize=1468 windowsize=16 /;
    await eventually(() => {
      assert.ok(lines().some((l) => plainLine.test(l)), lines().join('\n'));
      assert.ok(lines().some((l) => windowedLine.test(l)), lines().join('\n'));
    });
  });

});
