// Real clients from Debian's packages: curl (full, range, resume) and wget -c.
import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../helpers/eventually.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp.js';
import { need } from '../helpers/tools.js';

const BODY = randomBytes(6 * 1024 * 1024 + 3);
// Asynchronous: the server runs in this process and must keep answering.
const execFile = promisify(execFileCb);
const run = async (cmd: string, args: string[]) => (await execFile(cmd, args, { encoding: 'buffer', timeout: 30_000 })).stdout;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('real clients', () => {
  let s: TestServer;
  const out = tempDir({ after }, 'bootserve-e2e-out-');
  before(async () => {
    s = await startServer({ files: { 'initrd.img': BODY } });
  });
  after(() => s.close());

  test('curl: full download, a range, and resume with -C -', async (t) => {
    if (!need(t, 'curl', 'curl')) return;
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
    await eventually(() => s.logs.some((l) => l.status === 206 && l.bytesSent === BODY.length - 1234567), {
      what: 'a 206 for the rest of the file (the resume)',
    });
  });

  test('wget -c: resumes a partial file', async (t) => {
    if (!need(t, 'wget', 'wget')) return;
    const partial = join(out, 'wget.img');
    writeFileSync(partial, BODY.subarray(0, 777777));
    await run('wget', ['-q', '-c', '-O', partial, `${s.url}/initrd.img`]);
    assert.equal(sha(readFileSync(partial)), sha(BODY));
    const full = join(out, 'wget-full.img');
    await run('wget', ['-q', '-O', full, `${s.url}/initrd.img`]);
    assert.equal(sha(readFileSync(full)), sha(BODY));
  });
});
