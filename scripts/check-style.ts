// The project's line-length rule: no line of code in lib/, test/ or scripts/ longer than 140
// characters (code points, so "µs" or "×" count once).
//
//   node --import tsx scripts/check-style.ts [--max N] [--list] [--repo DIR] [DIR ...]
//
// Prints each long line as path:line: length, the count and the longest, and exits 1 if there is
// any. --list prints only the path:line: length lines (for a report). Node built-ins only.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const MAX_LINE = 140;
const DIRS = ['lib', 'test', 'scripts'];
/** Source files the rule covers: code and the scripts' shell launchers, not Markdown or data. */
const CODE = /\.(ts|mts|cts|js|mjs|cjs|sh)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'fixtures']);

export interface LongLine {
  file: string;
  line: number;
  length: number;
}

/** Every file under `dir` the rule covers (shell launchers in scripts/ have no extension); a file stands for itself. */
function files(dir: string): string[] {
  if (statSync(dir).isFile()) return [dir];
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 20) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(path, depth + 1);
      } else if (e.isFile() && (CODE.test(e.name) || isShellScript(path))) out.push(path);
    }
  };
  walk(dir, 0);
  return out.sort();
}

function isShellScript(path: string): boolean {
  if (/\.[a-z]+$/i.test(path)) return false;
  try {
    return readFileSync(path, 'latin1').slice(0, 64).startsWith('#!');
  } catch {
    return false;
  }
}

/** The lines longer than `max` in `text`. */
export function longLinesIn(text: string, max = MAX_LINE): { line: number; length: number }[] {
  const out: { line: number; length: number }[] = [];
  text.split('\n').forEach((l, i) => {
    const length = [...l.replace(/\r$/, '')].length;
    if (length > max) out.push({ line: i + 1, length });
  });
  return out;
}

/** The long lines of every covered file under `dirs` of `repo`. */
export function longLines(repo: string, dirs = DIRS, max = MAX_LINE): LongLine[] {
  return dirs.flatMap((d) =>
    files(join(repo, d)).flatMap((f) =>
      longLinesIn(readFileSync(f, 'utf8'), max).map((l) => ({ file: relative(repo, f), ...l }))));
}

function main(argv: string[]): number {
  let max = MAX_LINE;
  let list = false;
  let repo = join(fileURLToPath(import.meta.url), '..', '..');
  const dirs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--max') max = Number(argv[++i]);
    else if (a === '--list') list = true;
    else if (a === '--repo') repo = argv[++i] ?? repo;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('Usage: node --import tsx scripts/check-style.ts [--max N] [--list] [--repo DIR] [DIR ...]'
        + '  (default: lib test scripts)\n');
      return 0;
    } else dirs.push(a);
  }
  if (!Number.isInteger(max) || max < 1) throw new Error('--max needs a positive whole number');
  const long = longLines(repo, dirs.length ? dirs : DIRS, max);
  for (const l of long) process.stdout.write(`${l.file}:${l.line}: ${l.length}\n`);
  if (list) return long.length ? 1 : 0;
  const longest = long.reduce((m, l) => Math.max(m, l.length), 0);
  const byDir = new Map<string, number>();
  for (const l of long) byDir.set(l.file.split('/')[0] ?? '', (byDir.get(l.file.split('/')[0] ?? '') ?? 0) + 1);
  const where = [...byDir].map(([d, n]) => `${d}/ ${n}`).join(', ');
  process.stdout.write(long.length
    ? `${long.length} lines over ${max} characters (${where}); the longest ${longest}\n`
    : `no line over ${max} characters\n`);
  return long.length ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`check-style: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  }
}
