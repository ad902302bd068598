// lib/privileges.ts: who bootserve runs as after binding (pure plan), the drop itself on a fake
// process, and the readability check. The real drop, in a network namespace with DHCP, TFTP and
// HTTP answering afterwards, is in test/e2e-privileges.test.ts.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  becomeUser,
  couldRead,
  dropPrivileges,
  droppedNote,
  lookupAccount,
  parsePasswdLine,
  planPrivileges,
  settlePlan,
  unreadableBy,
  type Account,
  type ProcessIds,
} from '../../lib/privileges.js';

const ACCOUNTS: Account[] = [
  { name: 'root', uid: 0, gid: 0 },
  { name: 'nobody', uid: 65534, gid: 65534 },
  { name: 'netboot', uid: 990, gid: 985 },
];
const lookup = (u: string) => ACCOUNTS.find((a) => a.name === u || String(a.uid) === u);

test('plan: as root, nobody by default; --user picks another; --user root keeps root', () => {
  assert.deepEqual(planPrivileges(undefined, 0, lookup), { kind: 'drop', account: ACCOUNTS[1], chosen: 'default' });
  assert.deepEqual(planPrivileges('netboot', 0, lookup), { kind: 'drop', account: ACCOUNTS[2], chosen: 'flag' });
  assert.deepEqual(planPrivileges('990', 0, lookup), { kind: 'drop', account: ACCOUNTS[2], chosen: 'flag' });
  const root = planPrivileges('root', 0, lookup);
  assert.equal(root.kind, 'keep');
  assert.match(root.kind === 'keep' ? (root.note ?? '') : '', /running as root \(--user root\)/);
});

test('plan: not root, nothing changes; --user of someone else is refused naming the flag', () => {
  assert.deepEqual(planPrivileges(undefined, 1000, lookup), { kind: 'keep', note: undefined });
  assert.deepEqual(planPrivileges('netboot', 990, lookup), { kind: 'keep', note: undefined });
  const other = planPrivileges('netboot', 1000, lookup);
  assert.equal(other.kind, 'refused');
  assert.match(other.kind === 'refused' ? other.message : '', /^--user netboot: only root can change user/);
  const unknown = planPrivileges('nosuch', 0, lookup);
  assert.deepEqual(unknown, { kind: 'refused', message: '--user nosuch: no such user on this host' });
  const noNobody = planPrivileges(undefined, 0, () => undefined);
  assert.match(noNobody.kind === 'refused' ? noNobody.message : '', /no such user: name one with --user NAME/);
});

test('passwd lines, and the real lookup (root, nobody on any Linux)', () => {
  assert.deepEqual(parsePasswdLine('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin'), {
    name: 'nobody',
    uid: 65534,
    gid: 65534,
  });
  assert.equal(parsePasswdLine('# comment'), undefined);
  assert.equal(parsePasswdLine('bad:x:uid:0::/:/bin/sh'), undefined);
  assert.equal(lookupAccount('root')?.uid, 0);
  assert.equal(lookupAccount('0')?.name, 'root');
  assert.equal(lookupAccount('no-such-user-bootserve'), undefined);
});

/** A process whose ids change as the calls say (and can be told to ignore one). */
function fakeProcess(ignore?: 'setuid'): ProcessIds & { calls: string[] } {
  let uid = 0;
  let gid = 0;
  let groups = [0, 4, 27];
  const calls: string[] = [];
  return {
    calls,
    setgroups: (g) => (calls.push(`setgroups ${g.join(',')}`), (groups = g)),
    setgid: (id) => (calls.push(`setgid ${id}`), (gid = id)),
    setuid: (id) => (calls.push(`setuid ${id}`), ignore === 'setuid' ? undefined : (uid = id)),
    getuid: () => uid,
    geteuid: () => uid,
    getgid: () => gid,
    getegid: () => gid,
    getgroups: () => [...groups, gid],
  };
}

test('drop: groups cleared, then the group, then the user; any id left behind throws', () => {
  const p = fakeProcess();
  dropPrivileges(ACCOUNTS[2] as Account, p);
  assert.deepEqual(p.calls, ['setgroups ', 'setgid 985', 'setuid 990']);
  assert.throws(() => dropPrivileges(ACCOUNTS[2] as Account, fakeProcess('setuid')), /could not become netboot \(uid 0\/0/);
  assert.match(
    droppedNote({ kind: 'drop', account: ACCOUNTS[1] as Account, chosen: 'default' }),
    /^running as nobody \(uid 65534, gid 65534, no supplementary groups\) after binding its ports \(started as root; --user NAME/,
  );
});

test('unreadableBy names the folder, the error and the fixes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-priv-'));
  try {
    assert.equal(unreadableBy('nobody', dir), undefined);
    assert.match(
      unreadableBy('nobody', join(dir, 'missing')) ?? '',
      /^nobody cannot read .*missing \(ENOENT\): make it readable \(chmod -R o\+rX .*--user NAME, or keep root with --user root$/,
    );
    assert.match(unreadableBy('nobody', dir, [join(dir, 'snponly.efi')]) ?? '', /cannot read .*snponly\.efi \(ENOENT\)/);
    if (process.getuid?.() !== 0) {
      chmodSync(dir, 0o000);
      assert.match(unreadableBy('me', dir) ?? '', /\(EACCES\)/);
      chmodSync(dir, 0o700);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('becomeUser: keep says the note; drop drops, then checks what the user can read', () => {
  assert.deepEqual(becomeUser({ kind: 'keep', note: 'n' }, '/', [], fakeProcess()), { kind: 'became', note: 'n' });
  const p = fakeProcess();
  const plan = { kind: 'drop', account: ACCOUNTS[2] as Account, chosen: 'flag' } as const;
  const became = becomeUser(plan, tmpdir(), [], p);
  assert.equal(became.kind, 'became');
  assert.deepEqual(p.calls, ['setgroups ', 'setgid 985', 'setuid 990']);
  assert.match(JSON.stringify(becomeUser(plan, '/no/such/folder', [], fakeProcess())), /netboot cannot read \/no\/such\/folder \(ENOENT\)/);
  assert.match(JSON.stringify(becomeUser(plan, tmpdir(), [], fakeProcess('setuid'))), /"--user netboot: could not become netboot/);
});

test('the default drop gives way when nobody could read the folder; an explicit --user never does', () => {
  const nobody = ACCOUNTS[1] as Account;
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-priv-'));
  try {
    chmodSync(dir, 0o755);
    assert.equal(couldRead(dir, nobody), true);
    chmodSync(dir, 0o700);
    assert.equal(couldRead(dir, nobody), false, 'a 0700 folder, as /root is');
    assert.equal(couldRead(join(dir, 'missing'), nobody), false);
    const byDefault = { kind: 'drop', account: nobody, chosen: 'default' } as const;
    const kept = settlePlan(byDefault, dir);
    assert.equal(kept.kind, 'keep');
    assert.match((kept as { note: string }).note, /^warning: running as root: nobody could not read .*--user NAME/);
    const flagged = { kind: 'drop', account: nobody, chosen: 'flag' } as const;
    assert.deepEqual(settlePlan(flagged, dir), flagged, '--user nobody is obeyed (and refused after the drop if it cannot read)');
    assert.deepEqual(settlePlan(byDefault, dir, () => true), byDefault);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
