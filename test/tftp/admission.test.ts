import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TftpAdmission } from '../../lib/tftp/admission.js';

function admission(maxTransfers: number, maxPerClient = 16, maxWaiters = 100) {
  let clock = 0;
  const a = new TftpAdmission({ maxTransfers, maxPerClient, maxWaiters, forgetAfterMs: 10_000 }, () => clock);
  return { a, advance: (ms: number) => (clock += ms) };
}

test('under the cap every request starts at once', () => {
  const { a } = admission(2);
  assert.deepEqual(a.request('A|1', 'A'), { kind: 'admit', waitedMs: 0 });
  assert.deepEqual(a.request('B|1', 'B'), { kind: 'admit', waitedMs: 0 });
  assert.equal(a.active, 2);
});

test('beyond the cap a request waits (no answer), and its resend starts once a slot is free', () => {
  const { a, advance } = admission(1);
  assert.equal(a.request('A|1', 'A').kind, 'admit');
  assert.deepEqual(a.request('B|1', 'B'), { kind: 'wait', cause: 'server', position: 0 });
  assert.deepEqual(a.queue(), { waiting: 1, oldestWaitMs: 0 });
  advance(4000);
  assert.equal(a.request('B|1', 'B').kind, 'wait', 'still full: still waiting');
  a.release('A');
  advance(4000);
  assert.deepEqual(a.request('B|1', 'B'), { kind: 'admit', waitedMs: 8000 });
  assert.deepEqual(a.queue(), { waiting: 0, oldestWaitMs: 0 });
});

test('first come first served: a newcomer does not take the slot a waiter is owed', () => {
  const { a, advance } = admission(1);
  a.request('A|1', 'A');
  a.request('B|1', 'B');
  advance(1000);
  a.request('C|1', 'C');
  a.release('A');
  // C resends first, but B came first and the one free slot is B's.
  assert.deepEqual(a.request('C|1', 'C'), { kind: 'wait', cause: 'server', position: 1 });
  assert.deepEqual(a.request('D|1', 'D'), { kind: 'wait', cause: 'server', position: 2 });
  assert.equal(a.request('B|1', 'B').kind, 'admit');
  a.release('B');
  assert.equal(a.request('C|1', 'C').kind, 'admit');
});

test('a waiter that stops asking is forgotten and holds no place', () => {
  const { a, advance } = admission(1);
  a.request('A|1', 'A');
  a.request('B|1', 'B');
  advance(1000);
  a.request('C|1', 'C');
  a.release('A');
  advance(10_500); // B silent for 11.5 s, C for 10.5 s: both gone
  assert.deepEqual(a.queue(), { waiting: 0, oldestWaitMs: 0 });
  assert.deepEqual(a.request('D|1', 'D'), { kind: 'admit', waitedMs: 0 });
});

test('the per-client cap makes its own client wait without holding slots from others', () => {
  const { a } = admission(3, 1);
  assert.equal(a.request('A|1', 'A').kind, 'admit');
  assert.deepEqual(a.request('A|2', 'A'), { kind: 'wait', cause: 'client', position: 0 });
  assert.equal(a.request('B|1', 'B').kind, 'admit', 'A|2 waits for A, not for a server slot');
  a.release('A');
  assert.equal(a.request('A|2', 'A').kind, 'admit');
});

test('waiters are bounded: beyond the bound a request is neither answered nor remembered', () => {
  const { a } = admission(1, 16, 2);
  a.request('A|1', 'A');
  assert.equal(a.request('B|1', 'B').kind, 'wait');
  assert.equal(a.request('C|1', 'C').kind, 'wait');
  assert.deepEqual(a.request('D|1', 'D'), { kind: 'overflow' });
  assert.equal(a.queue().waiting, 2);
});
