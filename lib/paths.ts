// Request names to open files, for every protocol: decode once, refuse anything that could leave
// the root, resolve symlinks only to what stays inside it, open without blocking, and say what a
// file-system error means to a client.
import { close, constants, fstat, open, type Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { promisify } from 'node:util';

export type PathResult =
  | { kind: 'ok'; segments: string[]; trailingSlash: boolean }
  | { kind: 'bad-request' } // undecodable, NUL, or an encoded separator: 400
  | { kind: 'not-found' }; // traversal or a hidden name: 404, and nothing is touched

/**
 * Split and decode the path of a request-target. Pure: no file system access.
 * Each segment is percent-decoded exactly once, so "%252e%252e" names a file called "%2e%2e".
 */
export function parseRequestPath(target: string, dotfiles: boolean): PathResult {
  let path = target;
  if (!path.startsWith('/')) {
    // absolute-form (a proxy-style request): keep only the path
    try {
      path = new URL(path).pathname;
    } catch {
      return { kind: 'bad-request' };
    }
  }
  const end = path.search(/[?#]/);
  if (end >= 0) path = path.slice(0, end);

  const segments: string[] = [];
  for (const raw of path.split('/')) {
    if (raw === '' || raw === '.') continue;
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return { kind: 'bad-request' };
    }
    if (name.includes('\0') || name.includes('/') || name.includes('\\')) {
      // An encoded separator or NUL is an attack or a bug; a raw backslash is just not found.
      return raw.includes('\\') && !/%(2f|5c|00)/i.test(raw) ? { kind: 'not-found' } : { kind: 'bad-request' };
    }
    if (!servable(name, dotfiles)) return { kind: 'not-found' };
    segments.push(name);
  }
  return { kind: 'ok', segments, trailingSlash: path.endsWith('/') && segments.length > 0 };
}

/** The one rule for a decoded name, whatever the protocol: no parent, no hidden names. */
function servable(name: string, dotfiles: boolean): boolean {
  return name !== '..' && name !== '.' && (dotfiles || !name.startsWith('.'));
}

/**
 * Split a file name as TFTP clients send it: not encoded, maybe with a leading "/" (ignored) and
 * Windows-style backslashes (read as "/"). Pure: no file system access.
 */
export function parseFileName(name: string, dotfiles: boolean): PathResult {
  if (name.includes('\0')) return { kind: 'bad-request' };
  const segments: string[] = [];
  for (const raw of name.replace(/\\/g, '/').split('/')) {
    if (raw === '' || raw === '.') continue;
    if (!servable(raw, dotfiles)) return { kind: 'not-found' };
    segments.push(raw);
  }
  return { kind: 'ok', segments, trailingSlash: name.endsWith('/') && segments.length > 0 };
}

/**
 * The real path of `segments` under `root` (itself a real path), or null when it does not
 * exist, or a symlink leads outside the root or (without dotfiles) to a hidden name.
 * Errors other than "not there" are thrown.
 */
export async function resolveInRoot(root: string, segments: string[], dotfiles: boolean): Promise<string | null> {
  let real: string;
  try {
    real = await realpath(join(root, ...segments));
  } catch (err) {
    if (fileError(err) === 'not-found') return null;
    throw err;
  }
  if (real === root) return real;
  const prefix = root.endsWith(sep) ? root : root + sep;
  if (!real.startsWith(prefix)) return null;
  if (!dotfiles && real.slice(prefix.length).split(sep).some((name) => name.startsWith('.'))) return null;
  return real;
}

/** What a file-system error means to a client, whatever the protocol answers with. */
export type FileError = 'not-found' | 'forbidden' | 'out-of-descriptors' | 'unexpected';

export function fileError(err: unknown): FileError {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ELOOP':
    case 'ENAMETOOLONG':
      return 'not-found';
    case 'EACCES':
    case 'EPERM':
      return 'forbidden';
    case 'EMFILE':
    case 'ENFILE':
      return 'out-of-descriptors';
    default:
      return 'unexpected';
  }
}

// Plain descriptors, not FileHandles: transfers read them through read streams and fs.read.
const openFd = promisify(open);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);
// O_NONBLOCK: opening a FIFO that somebody left in the directory must not hang us.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** Open a resolved path read-only and fstat it: a regular file stays open, anything else is closed and named. */
export async function openRegular(real: string): Promise<{ fd: number; stats: Stats } | 'directory' | 'other'> {
  const fd = await openFd(real, OPEN_FLAGS);
  let stats: Stats;
  try {
    stats = await fstatFd(fd);
  } catch (err) {
    await closeFd(fd);
    throw err;
  }
  if (stats.isFile()) return { fd, stats };
  await closeFd(fd);
  return stats.isDirectory() ? 'directory' : 'other';
}
