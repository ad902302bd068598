// The runner behind `npm test` and `npm run test:unit`. Node 20's --test does not expand globs,
// so the files are found here: every test/**/*.test.ts, or with --unit all but test/e2e/, or
// only the files and folders named. They run under node --test with two checks of their own:
//  - a file that leaves a handle open fails itself (test/helpers/leaks.ts, loaded into each file);
//  - the run gets a temp directory of its own (TMPDIR) and fails if anything is left in it.
// Usage: node --import tsx test/run.ts [--unit] [path...]
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TEST_DIR = fileURLToPath(new URL('.', import.meta.url));
const REPO = join(TEST_DIR, '..');
const LEAKS = new URL('helpers/leaks.ts', import.meta.url).href;

/** Every *.test.ts under `dir`, sorted, helpers/ excluded. */
function testFiles(dir: string): string[] {
  if (statSync(dir).isFile()) return [dir];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'helpers' && entry.name !== 'node_modules') out.push(...testFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const roots = args.filter((a) => a !== '--unit');
const selected = (roots.length > 0 ? roots.flatMap((r) => testFiles(r)) : testFiles(TEST_DIR))
  .filter((f) => !unit || !relative(TEST_DIR, f).startsWith(`e2e${sep}`))
  .map((f) => relative(REPO, f));
if (selected.length === 0) {
  console.error('test/run: no test files selected');
  process.exit(2);
}

// Everything the tests create in the temp directory lands here; 1777 like /tmp, because some
// tests run programs as nobody.
const outer = tmpdir();
const scratch = mkdtempSync(join(outer, 'bootserve-run-'));
chmodSync(scratch, 0o1777);
// tsx keeps its compile cache in the temp directory: the tests share the real one.
const tsxCache = `tsx-${process.geteuid?.() ?? 0}`;
mkdirSync(join(outer, tsxCache), { recursive: true, mode: 0o700 });
symlinkSync(join(outer, tsxCache), join(scratch, tsxCache));
const env = {
  ...process.env,
  TMPDIR: scratch,
  // scripts/e2e-netboot-assets.sh leaves them in the real temp directory; keep finding them there.
  BOOTSERVE_E2E_ASSETS: process.env.BOOTSERVE_E2E_ASSETS ?? join(outer, 'bootserve-e2e'),
};
const child = spawn(process.execPath, ['--import', 'tsx', '--import', LEAKS, '--test', '--test-concurrency=1', ...selected], {
  cwd: REPO,
  env,
  stdio: 'inherit',
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward).on('SIGTERM', forward);

child.on('exit', (code, signal) => {
  const left = readdirSync(scratch).filter((name) => name !== tsxCache);
  if (left.length > 0) {
    console.error(`\ntest/run: the tests left ${left.length} entries in the temp directory (now removed):`);
    for (const name of left.slice(0, 20)) console.error(`  ${name}`);
  }
  rmSync(scratch, { recursive: true, force: true });
  if (signal) process.exitCode = 128 + constants.signals[signal];
  else process.exitCode = code !== 0 ? (code ?? 1) : left.length > 0 ? 1 : 0;
});
