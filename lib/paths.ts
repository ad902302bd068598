// Request names to file paths, for every protocol: decode once, refuse anything that could leave
// the root, and resolve symlinks only to what stays inside it.
import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';

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
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') return null;
    throw err;
  }
  if (real === root) return real;
  const prefix = root.endsWith(sep) ? root : root + sep;
  if (!real.startsWith(prefix)) return null;
  if (!dotfiles && real.slice(prefix.length).split(sep).some((name) => name.startsWith('.'))) return null;
  return real;
}
