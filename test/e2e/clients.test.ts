// Real clients from Debian's packages: curl (full, range, resume) and wget -c.
import assert from 'node:assert/strict';
import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.js';

const BODY = randomBytes(6 * 1024 * 1024 + 3);
// Asynchronous: the server runs in this process and must keep answering.
const execFile = promisify(execFileCb);
const run = async (cmd: string, args: string[]) => (await execFile(cmd, args, { encoding: 'buffer', timeout: 30_000 })).stdout;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Skip with a reason when a tool is missing, unless BOOTSERVE_E2E=required makes it a failure. */
function need(t: TestContext, tool: string): boolean {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0) return true;
  if (process.env.BOOTSERVE_E2E === 'required') assert.fail(`${tool} not found and BOOTSERVE_E2E=required`);
  t.skip(`${tool} not found (install it, e.g. apt-get install ${tool})`);
  return false;
}

describe('real clients', () => {
  let s: TestServer;
  const out = mkdtempSync(join(tmpdir(), 'bootserve-e2e-out-'));
  before(async () => {
    s = await startServer({ files: { 'initrd.img': BODY } });
  });
  after(() => s.close());

  test('curl: full download, a range, and resume with -C -', async (t) => {
    if (!need(t, 'curl')) return;
    const file = join(out, 'curl.img');
    await run('curl', ['-sSf', '-o', file, `${s.url}/initrd.img`]);
    assert.equal(sha(readFileSync(file)), sha(BODY));
    const range = await run('curl', ['-sSf', '-r', '100-199', `${s.url}/initrd.img`]);
    assert.ok(range.equals(BODY.subarray(100, 200)));
    const partial = join(out, 'curl-resume.img');
    writeFileSync(partial, BODY.subarray(0, 1234567));
    await run('curl', ['-sSf', '-C', '-', '-o', partial, `${s.url}/initrd.img`]);
    assert.equal(sha(readFileSync(partial)), sha(BODY));
    // The record is written when the response finishes, which may be just after curl exits.
    const resumed = () => s.logs.some((l) => l.status === 206 && l.bytesSent === BODY.length - 1234567);
    for (let i = 0; i < 100 && !resumed(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(resumed(), 'the resume was a 206 for the rest of the file');
  });

  test('wget -c: resumes a partial file', async (t) => {
    if (!need(t, 'wget')) return;
    const partial = join(out, 'wget.img');
    writeFileSync(partial, BODY.subarray(0, 777777));
    await run('wget', ['-q', '-c', '-O', partial, `${s.url}/initrd.img`]);
    assert.equal(sha(readFileSync(partial)), sha(BODY));
    const full = join(out, 'wget-full.img');
    await run('wget', ['-q', '-O', full, `${s.url}/initrd.img`]);
    assert.equal(sha(readFileSync(full)), sha(BODY));
  });
});
