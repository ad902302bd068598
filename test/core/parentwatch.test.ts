// lib/parentwatch.ts (on an injected parent id and timer) and lib/interrupted.ts. The real
// case, a wrapper shell killed under a running bootserve, is in test/orphan.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cutTransfersLines } from '../../lib/interrupted.js';
import { watchParent } from '../../lib/parentwatch.js';

const NPM = { npm_command: 'exec', npm_lifecycle_event: 'npx' };

function fakeTimers() {
  let tick: (() => void) | undefined;
  let cleared = 0;
  return {
    setInterval: (fn: () => void) => ((tick = fn), { unref: () => undefined }),
    clearInterval: () => void cleared++,
    tick: () => tick?.(),
    cleared: () => cleared,
  };
}

test('a parent that goes away is reported once, with its pid', () => {
  let ppid = 4242;
  const gone: number[] = [];
  const timers = fakeTimers();
  const w = watchParent({ env: NPM, ppid: () => ppid, onGone: (p) => gone.push(p), ...timers });
  assert.equal(w.kind, 'watching');
  timers.tick();
  assert.deepEqual(gone, []);
  ppid = 1; // re-parented to init (or to a subreaper: any other pid)
  timers.tick();
  assert.deepEqual(gone, [4242]);
  assert.equal(timers.cleared(), 1);
});

test('started by PID 1 (systemd, a container init): nothing to watch', () => {
  const w = watchParent({ env: NPM, ppid: () => 1, onGone: () => assert.fail('no parent to lose'), ...fakeTimers() });
  assert.deepEqual(w, { kind: 'not-watching', reason: 'started by pid 1' });
});

test('not started by npm (nohup, a shell, a service manager): not watched, it may outlive its parent', () => {
  const w = watchParent({ env: { PATH: '/bin' }, ppid: () => 4242, onGone: () => assert.fail('not watched'), ...fakeTimers() });
  assert.deepEqual(w, { kind: 'not-watching', reason: 'not started by npm' });
  assert.equal(
    watchParent({ env: { npm_lifecycle_event: 'start' }, ppid: () => 4242, onGone: () => undefined, ...fakeTimers() }).kind,
    'watching',
  );
});

test('the real timer is unref()ed and stops', () => {
  const w = watchParent({ env: NPM, ppid: () => process.ppid, onGone: () => assert.fail('parent still here'), everyMs: 10 });
  assert.equal(w.kind, 'watching');
  if (w.kind === 'watching') w.stop();
});

test('a second signal names the transfers it cuts, bounded', () => {
  assert.deepEqual(cutTransfersLines('SIGINT', []), ['SIGINT again: exiting now (no transfer was running)']);
  const one = cutTransfersLines('SIGINT', [
    { protocol: 'http', client: '198.18.0.100', path: '/vmlinuz', bytesSent: 1000, bytesDue: 5000 },
  ]);
  assert.deepEqual(one, ['SIGINT again: exiting now, cutting 1 transfer', 'cut: 198.18.0.100 http /vmlinuz at 1000 of 5000 bytes']);
  const many = Array.from({ length: 25 }, (_, i) => ({ protocol: 'tftp', client: `10.0.0.${i}`, path: '/x', bytesSent: 0, bytesDue: 1 }));
  const lines = cutTransfersLines('SIGTERM', many);
  assert.equal(lines.length, 22);
  assert.equal(lines.at(-1), 'cut: and 5 more');
});
