// Directory listings: what a directory holds, as HTML for people and JSON for scripts.
// People read sizes in binary units (1.0 GiB), with the exact byte count on hover; scripts
// get exact bytes in the JSON.
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { humanBytes } from '../observe/human.js';
import { resolveInRoot } from '../paths.js';
import { escapeHtml } from './reply.js';

export interface ListingEntry {
  name: string;
  type: 'file' | 'directory';
  size: number;
  mtime: string;
}

/** Entries of `dir` that a client could fetch: no hidden names (unless allowed), no escaping links. */
export async function readListing(root: string, dir: string, dotfiles: boolean): Promise<ListingEntry[]> {
  const entries: ListingEntry[] = [];
  for (const dirent of await readdir(dir, { withFileTypes: true })) {
    if (dirent.name.startsWith('.') && !dotfiles) continue;
    let path = join(dir, dirent.name);
    if (dirent.isSymbolicLink()) {
      const real = await resolveInRoot(root, relative(root, path).split(sep), dotfiles).catch(() => null);
      if (real === null) continue;
      path = real;
    }
    try {
      const s = await stat(path);
      if (!s.isFile() && !s.isDirectory()) continue;
      entries.push({
        name: dirent.name,
        type: s.isDirectory() ? 'directory' : 'file',
        size: s.isDirectory() ? 0 : s.size,
        mtime: s.mtime.toISOString(),
      });
    } catch {
      // vanished or unreadable between readdir and stat: leave it out
    }
  }
  return entries.sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === 'directory' ? -1 : 1));
}

/** A byte count as a person reads it (observe/human.ts): the page and the listings say sizes alike. */
export const humanSize = humanBytes;

export function renderListingHtml(urlPath: string, entries: ListingEntry[]): string {
  const rows = entries.map((e) => {
    const href = encodeURIComponent(e.name) + (e.type === 'directory' ? '/' : '');
    const label = escapeHtml(e.name) + (e.type === 'directory' ? '/' : '');
    const size = e.type === 'directory' ? '<td>-</td>' : `<td class="size" title="${e.size} bytes">${humanSize(e.size)}</td>`;
    return `<tr><td><a href="${href}">${label}</a></td>${size}<td>${e.mtime}</td></tr>`;
  });
  const title = escapeHtml(`Index of ${urlPath}`);
  const up = urlPath === '/' ? '' : '<tr><td><a href="../">../</a></td><td></td><td></td></tr>';
  return (
    `<!doctype html>\n<html><head><meta charset="utf-8"><title>${title}</title>` +
    `<style>td{padding:0 8px}.size{text-align:right}</style></head>\n` +
    `<body><h1>${title}</h1>\n<table><tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n` +
    `${up}${rows.join('\n')}\n</table></body></html>\n`
  );
}

/** Whether the client prefers JSON: an Accept header that names application/json. */
export function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && /application\/json/i.test(accept);
}
