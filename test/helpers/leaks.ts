// Loaded into every test file by test/run.ts (node --import): once the file's tests are done,
// what they opened must be closed and what they wrote to the temp directory removed.
//  - A handle still open (a server, a socket, a child process, a ref'd timer) would keep the test
//    process alive: the hang --test-force-exit used to hide. After the last test a watchdog
//    (unref'd, so it keeps nothing alive) gives the file's own after() hooks LEAK_GRACE_MS to
//    close everything; a process still alive then names its open handles and exits 1.
//  - An entry the file left in the temp directory is named on exit, and the exit status is 1.
// node --test reports either as a failure of the file ("test failed", exit code 1) with these
// lines on its stderr.
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after } from 'node:test';

/** How long after the last test the file's after() hooks have to close what it opened. */
const LEAK_GRACE_MS = Number(process.env.BOOTSERVE_TEST_LEAK_GRACE_MS ?? 10_000);
/** The test process's own stdin, stdout and stderr. */
const STDIO_HANDLES = 3;

/** What keeps the event loop alive, less the process's own stdio. */
export function openHandles(): string[] {
  let stdio = STDIO_HANDLES;
  return process.getActiveResourcesInfo().filter((r) => !((r === 'PipeWrap' || r === 'TTYWrap') && stdio-- > 0));
}

// Only inside a test process that node --test started (not in the runner's own process).
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  const file = process.argv[1] ?? 'this test file';
  const scratch = tmpdir();
  const before = new Set(readdirSync(scratch));

  // The first root after() hook: it runs right after the last test, before the file's own.
  after(() => {
    setTimeout(() => {
      process.stderr.write(`\n${file}: handles still open ${LEAK_GRACE_MS} ms after the last test: ${openHandles().join(', ')}\n`);
      process.exit(1);
    }, LEAK_GRACE_MS).unref();
  });

  // Only in the runner's own temp directory: in a shared one, other programs come and go.
  if (basename(scratch).startsWith('bootserve-run-')) {
    process.on('exit', () => {
      const left = readdirSync(scratch).filter((name) => !before.has(name));
      if (left.length === 0) return;
      process.stderr.write(`\n${file}: left in the temp directory ${scratch}: ${left.join(', ')}\n`);
      process.exitCode = 1;
      // Removed, so the next file is not blamed too.
      for (const name of left) rmSync(join(scratch, name), { recursive: true, force: true });
    });
  }
}
