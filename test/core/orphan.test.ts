// No orphans: bootserve started by npm through a shell that does not pass signals on (what `npx`
// and `npm exec` do: npm signals its `sh -c` only, npm/cli#5776) stops when that shell is
// killed: it notices its parent went away (lib/parentwatch.ts) and shuts down as on SIGTERM.
// Started without npm (nohup, a plain shell), it may outlive its parent.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BIN, KEEP_ROOT } from '../helpers/tools.js';
import { eventually } from '../helpers/eventually.js';
import { tempRoot } from '../helpers/temp.js';

/** Running, and not a zombie (a re-parented child's new parent may be slow to reap it). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test('the shell that started bootserve is killed: bootserve logs why and exits 0 within seconds', { timeout: 30_000 }, async (t) => {
  const root = tempRoot({ 'hello.txt': 'hello\n' }, t);
  // `; echo` keeps the shell from exec()ing node in its place, as npm's `sh -c` does not either.
  const script = `"${process.execPath}" "${BIN}" ${KEEP_ROOT.join(' ')} --host 127.0.0.1 --port 0 --shutdown-grace 2s "${root}"` +
  ` & echo "pid $!"; wait; echo shell-done`;
  // npm marks the environment of what it starts: npm_command=exec under npx.
  const sh = spawn('sh', ['-c', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, npm_command: 'exec', npm_lifecycle_event: 'npx' },
  });
  let out = '';
  sh.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  sh.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  t.after(() => {
    try {
      process.kill(-(sh.pid as number), 'SIGKILL');
    } catch {
      // gone
    }
  });
  await eventually(() => /iPXE: chain/.test(out), { timeoutMs: 15_000, what: 'the banner' });
  const pid = Number(/pid (\d+)/.exec(out)?.[1]);
  assert.ok(pid > 0);
  sh.kill('SIGKILL'); // the wrapper dies without a word to its child
  await eventually(() => !alive(pid), { timeoutMs: 10_000, what: `bootserve (pid ${pid}) to stop after its parent died:\n${out}` });
  assert.match(out, /parent process \(pid \d+\) went away: finishing transfers/);
});

test('started without npm (nohup, a shell): bootserve outlives its shell', { timeout: 30_000 }, async (t) => {
  const root = tempRoot({ 'hello.txt': 'hello\n' }, t);
  const script = `"${process.execPath}" "${BIN}" ${KEEP_ROOT.join(' ')} --host 127.0.0.1 --port 0 --shutdown-grace 1s "${root}"` +
  ` & echo "pid $!"; wait`;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/.test(k)) env[k] = v;
  const sh = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  let out = '';
  sh.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  let pid = 0;
  t.after(() => {
    for (const p of [-(sh.pid as number), pid]) {
      try {
        if (p) process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  await eventually(() => /iPXE: chain/.test(out), { timeoutMs: 15_000, what: 'the banner' });
  pid = Number(/pid (\d+)/.exec(out)?.[1]);
  sh.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 2500));
  assert.ok(alive(pid), 'still serving');
  process.kill(pid, 'SIGTERM');
  await eventually(() => !alive(pid), { timeoutMs: 10_000, what: 'bootserve to stop on SIGTERM' });
});
