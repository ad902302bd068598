// Least privilege: bind every port as root, then become an ordinary user for the rest of the
// process's life (dnsmasq's and in.tftpd's --user). Three steps, only the last two touching the
// process:
//   planPrivileges  → keep, drop to an account, or refuse (pure: uid, --user, a lookup)
//   dropPrivileges  → supplementary groups cleared, then the group, then the user
//   unreadableBy    → after the drop, what the new user cannot read (the served folder)
// Started as root without --user, bootserve becomes `nobody`; `--user root` keeps root.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

export type PrivilegePlan =
  /** Nothing to change: not root, or root on purpose. `note` is for the banner, if any. */
  | { kind: 'keep'; note: string | undefined }
  | { kind: 'drop'; account: Account; chosen: 'default' | 'flag' }
  | { kind: 'refused'; message: string };

export const DEFAULT_USER = 'nobody';

/** A passwd(5) line's account, or undefined. */
export function parsePasswdLine(line: string): Account | undefined {
  const f = line.split(':');
  if (f.length < 4 || !/^\d+$/.test(f[2] ?? '') || !/^\d+$/.test(f[3] ?? '')) return undefined;
  return { name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]) };
}

/** An account by name or numeric uid: /etc/passwd first, then NSS (LDAP, systemd-userdb) through getent. */
export function lookupAccount(user: string): Account | undefined {
  const matches = (a: Account | undefined) => a !== undefined && (a.name === user || String(a.uid) === user);
  try {
    const found = readFileSync('/etc/passwd', 'utf8').split('\n').map(parsePasswdLine).find(matches);
    if (found) return found;
  } catch {
    // no /etc/passwd: ask NSS
  }
  try {
    return parsePasswdLine(
      execFileSync('getent', ['passwd', user], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    );
  } catch {
    return undefined;
  }
}

export function planPrivileges(user: string | undefined, uid: number, lookup: (user: string) => Account | undefined): PrivilegePlan {
  const wanted = user ?? (uid === 0 ? DEFAULT_USER : undefined);
  if (wanted === undefined) return { kind: 'keep', note: undefined };
  const account = lookup(wanted);
  if (!account) {
    return {
      kind: 'refused',
      message:
        user === undefined
          ? `started as root, bootserve drops to '${DEFAULT_USER}' after binding its ports, but this host has no such user: ` +
            `name one with --user NAME (--user root keeps root)`
          : `--user ${user}: no such user on this host`,
    };
  }
  if (account.uid === uid)
    return { kind: 'keep', note: uid === 0 ? 'running as root (--user root): every request is served with root\'s rights' : undefined };
  if (uid !== 0)
    return {
      kind: 'refused',
      message: `--user ${wanted}: only root can change user, and bootserve runs as uid ${uid}; start it as root, or leave --user out`,
    };
  return { kind: 'drop', account, chosen: user === undefined ? 'default' : 'flag' };
}

/** The process calls dropPrivileges needs (process itself in production). */
export interface ProcessIds {
  setgroups(groups: number[]): void;
  setgid(id: number): void;
  setuid(id: number): void;
  getuid(): number;
  geteuid(): number;
  getgid(): number;
  getegid(): number;
  getgroups(): number[];
}

/**
 * Become `account` for good: groups first (only root may change them), the user last. Throws
 * when the kernel refused or when any id is not the one asked for afterwards.
 */
export function dropPrivileges(account: Account, ids: ProcessIds): void {
  ids.setgroups([]);
  ids.setgid(account.gid);
  ids.setuid(account.uid);
  // Node lists the effective group among the supplementary ones; nothing else may remain.
  const groups = ids.getgroups().filter((g) => g !== account.gid);
  if (
    ids.getuid() !== account.uid ||
    ids.geteuid() !== account.uid ||
    ids.getgid() !== account.gid ||
    ids.getegid() !== account.gid ||
    groups.length > 0
  ) {
    throw new Error(
      `could not become ${account.name} (uid ${ids.getuid()}/${ids.geteuid()}, gid ${ids.getgid()}/${ids.getegid()}, ` +
        `groups ${groups.join(',') || 'none'})`,
    );
  }
}

/** One banner line after a drop. */
export function droppedNote(plan: Extract<PrivilegePlan, { kind: 'drop' }>): string {
  const { name, uid, gid } = plan.account;
  const how = plan.chosen === 'default' ? ` (started as root; --user NAME picks another user, --user root keeps root)` : '';
  return `running as ${name} (uid ${uid}, gid ${gid}, no supplementary groups) after binding its ports${how}`;
}

/**
 * After the drop: a message if the current user cannot list `root`, or cannot read one of
 * `files` (the iPXE binaries served from outside it); undefined when all is readable.
 */
export function unreadableBy(user: string, root: string, files: readonly string[] = []): string | undefined {
  try {
    accessSync(root, constants.R_OK | constants.X_OK);
    readdirSync(root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return (
      `${user} cannot read ${root} (${code}): make it readable (chmod -R o+rX ${root}), ` +
      `run as its owner with --user NAME, or keep root with --user root`
    );
  }
  for (const file of files) {
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      return (
        `${user} cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}): ` +
        `make it readable, or copy it into ${root}/ipxe/`
      );
    }
  }
  return undefined;
}

export type Became = { kind: 'became'; note: string | undefined } | { kind: 'refused'; message: string };

/**
 * After every port is bound: carry out the plan (drop for good, or keep), then check the user can
 * read the served folder and the files served from outside it. The banner note, or a refusal.
 */
export function becomeUser(
  plan: Exclude<PrivilegePlan, { kind: 'refused' }>,
  root: string,
  files: readonly string[],
  ids: ProcessIds,
): Became {
  if (plan.kind === 'keep') return { kind: 'became', note: plan.note };
  try {
    dropPrivileges(plan.account, ids);
  } catch (err) {
    return { kind: 'refused', message: `--user ${plan.account.name}: ${(err as Error).message}` };
  }
  const unreadable = unreadableBy(plan.account.name, root, files);
  return unreadable ? { kind: 'refused', message: unreadable } : { kind: 'became', note: droppedNote(plan) };
}

/**
 * Whether `account` could list `dir`, judged as root from the permission bits of the folder and
 * of every folder above it (read and search on the folder itself, search on the ones above).
 * Checked before the drop, which cannot be undone.
 */
export function couldRead(dir: string, account: Account): boolean {
  const allows = (path: string, bits: number) => {
    const st = statSync(path);
    const mode = st.uid === account.uid ? (st.mode >> 6) & 7 : st.gid === account.gid ? (st.mode >> 3) & 7 : st.mode & 7;
    return (mode & bits) === bits;
  };
  try {
    if (!allows(dir, 5)) return false;
    for (let up = dirname(dir); ; up = dirname(up)) {
      if (!allows(up, 1)) return false;
      if (up === dirname(up)) return true;
    }
  } catch {
    return false;
  }
}

/**
 * The drop that is only a default (no --user) gives way when the default user could not read
 * the folder: a newcomer's first command (as root, in a clone under /root, mode 0700) must work.
 * bootserve then stays root and says so loudly; an explicit --user is never overridden.
 */
export function settlePlan(plan: PrivilegePlan, root: string, readable = couldRead): PrivilegePlan {
  if (plan.kind !== 'drop' || plan.chosen !== 'default' || readable(root, plan.account)) return plan;
  const { name } = plan.account;
  return {
    kind: 'keep',
    note:
      `warning: running as root: ${name} could not read ${root}, so bootserve did not drop to ${name}; ` +
      `serve a folder others can read, or choose --user NAME (--user root keeps root without this warning)`,
  };
}
