// Temporary directories that are removed when their owner ends: a test (t), or a file or a
// suite (node:test's after, passed as { after }). test/helpers/leaks.ts fails a file that leaves
// anything in the temp directory.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** What a temporary directory belongs to: a TestContext, or { after } from node:test. */
export interface Owner {
  after(fn: () => unknown): void;
}

/** A fresh directory (its real path) under the temp directory, for the caller to remove. */
export function makeTempDir(prefix = 'bootserve-test-'): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

/** A fresh directory, removed with everything in it when `owner` ends. */
export function tempDir(owner: Owner, prefix = 'bootserve-test-'): string {
  const dir = makeTempDir(prefix);
  owner.after(() => removeDir(dir));
  return dir;
}

/** Write `files` (relative path: contents) under `dir`, creating folders as needed. */
export function writeFiles(dir: string, files: Record<string, string | Buffer>): void {
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), body);
  }
}

/** A directory holding `files`, removed when `owner` ends. */
export function tempRoot(files: Record<string, string | Buffer>, owner: Owner): string {
  const root = tempDir(owner);
  writeFiles(root, files);
  return root;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
