// The README and the program cannot drift apart:
//   1. its option table is the one lib/cli.ts makes from the options themselves;
//   2. its first code block, run verbatim in a fresh `git clone` of this repository, installs
//      and serves: the banner appears, /boot.ipxe answers with the menu the README shows;
//   3. `npx bootserve` in that clone, stopped with SIGTERM to npx alone (which npm passes only
//      to its shell, npm/cli#5776), leaves no bootserve behind.
// The clone is of the committed HEAD: uncommitted edits are not what a newcomer would get.
// The environment differs from a newcomer's in two ways that change no command: PORT=0 (any free
// port; 8080 may be taken on a test machine) and npm preferring its cache (fewer registry
// round trips).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { optionsMarkdown } from '../../lib/cli.js';
import { get, skipOrFail } from '../helpers/tools.js';
import { eventually } from '../helpers/eventually.js';

const REPO = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

/** The fenced code blocks of a Markdown text, in order, with their info string. */
export function codeBlocks(markdown: string): { lang: string; body: string }[] {
  const blocks: { lang: string; body: string }[] = [];
  const re = /^```([^\n`]*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) blocks.push({ lang: (m[1] ?? '').trim(), body: m[2] ?? '' });
  return blocks;
}

test('README: the option table is made from the options (lib/cli.ts)', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const m = /<!-- options:[^\n]*-->\n([\s\S]*?)\n<!-- options end -->/.exec(readme);
  assert.ok(m, 'README.md has the option table between its markers');
  assert.equal(m[1], optionsMarkdown(), 'README.md option table differs from lib/cli.ts: paste optionsMarkdown() in');
});

test('README: a Layout section for the architecture', () => {
  assert.match(readFileSync(join(REPO, 'README.md'), 'utf8'), /^## Layout$/m);
});

interface Group {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | string>;
}

/** A command in its own process group (so that the whole of it can be stopped), output kept. */
function startGroup(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Group {
  const proc = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { proc, out: () => out, exited };
}

function killGroup(g: Group): void {
  try {
    process.kill(-(g.proc.pid as number), 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Pids of every descendant of `pid` (from /proc), children first. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of existsSync('/proc') ? spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' }).stdout.split('\n') : []) {
    const [child, parent] = entry.trim().split(/\s+/).map(Number);
    if (child && parent) children.set(parent, [...(children.get(parent) ?? []), child]);
  }
  const found: number[] = [];
  const walk = (p: number) => (children.get(p) ?? []).forEach((c) => (found.push(c), walk(c)));
  walk(pid);
  return found;
}

/** Running, and not a zombie (a re-parented child's new parent may be slow to reap it). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

function cleanEnv(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(BOOTSERVE_|LISTEN_|PORT$|NODE_OPTIONS$|NODE_V8_COVERAGE$|npm_)/.test(k)) env[k] = v;
  return { ...env, PORT: '0', npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', TMPDIR: dir };
}

test(
  'README: the first code block works verbatim in a fresh clone; npx stopped by SIGTERM leaves no orphan',
  { timeout: 420_000 },
  async (t: TestContext) => {
    if (spawnSync('git', ['--version']).status !== 0) return skipOrFail(t, 'git not found');
    const dir = mkdtempSync(join(tmpdir(), 'bootserve-readme-'));
    // The folder is mkdtemp's 0700, as /root is: started as root, bootserve would drop to nobody,
    // who could not read the clone, so it stays root and says so (lib/privileges.ts settlePlan).
    const clone = join(dir, 'bootserve');
    const groups: Group[] = [];
    t.after(() => {
      groups.forEach(killGroup);
      rmSync(dir, { recursive: true, force: true });
    });
    const cloned = spawnSync('git', ['clone', '--quiet', REPO, clone], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(cloned.status, 0, cloned.stderr);

  const readme = readFileSync(join(clone, 'README.md'), 'utf8');
  const blocks = codeBlocks(readme);
  const first = blocks[0];
  assert.ok(first && first.lang === 'sh', "the README's first code block is a shell block");
  // What a newcomer types: commands only, no comment or prompt to strip. The first line installs
  // and serves; the second runs the tests (this very suite: not run again from here).
  const commands = first.body.trim().split('\n');
  assert.deepEqual(commands.filter((c) => /^\s*(#|\$)/.test(c)), [], 'no prompts or comment lines in the first block');
  assert.deepEqual(commands.slice(1), ['npm test'], 'the second command runs the tests');

  const env = cleanEnv(dir);
  const run = startGroup('bash', ['-e', '-c', commands[0] as string], clone, env);
  groups.push(run);
  const chain = /iPXE: chain (http:\/\/\S+)\/boot\.ipxe/;
  await eventually(() => chain.test(run.out()) || run.proc.exitCode !== null, { timeoutMs: 360_000, what: 'the banner' });
  assert.match(run.out(), chain, `the first block did not serve:\n${run.out().slice(-3000)}`);
  const base = (chain.exec(run.out()) as RegExpExecArray)[1] as string;
  assert.match(run.out(), /serving .*contrib\/netboot/);

    // The menu the README shows is the one served (its "..." stands for lines left out).
    const menu = await get(`${base}/boot.ipxe`);
    assert.equal(menu.status, 200);
    const served = menu.body.toString().split('\n');
    const shown = blocks.find((b) => b.body.startsWith('#!ipxe'));
    assert.ok(shown, 'the README shows the generated menu');
    for (const line of shown.body.split('\n').filter((l) => l !== '' && l !== '...'))
      assert.ok(served.includes(line), `menu line from the README not served: ${line}`);

  process.kill(-(run.proc.pid as number), 'SIGINT'); // Ctrl-C: the terminal signals the whole group
  // unref(): once the command has exited, this timer must not keep the test process alive.
  assert.equal(await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('still running'), 20_000).unref())]), 0);

    // npx: npm exec → sh -c bootserve → node. SIGTERM to npm alone.
    // npx links the package into its cache (<cache>/_npx/<hash>): a cache of the test's own, removed with it.
    const npx = startGroup('npx', ['bootserve', 'contrib/netboot'], clone, { ...env, npm_config_cache: join(dir, 'npm-cache') });
    groups.push(npx);
    await eventually(() => chain.test(npx.out()) || npx.proc.exitCode !== null, { timeoutMs: 240_000, what: 'the banner under npx' });
    assert.match(npx.out(), chain, npx.out().slice(-3000));
    const below = descendants(npx.proc.pid as number);
    assert.ok(below.length > 0, 'npx runs bootserve as a descendant');
    process.kill(npx.proc.pid as number, 'SIGTERM');
    await eventually(() => below.every((pid) => !alive(pid)), {
      timeoutMs: 15_000,
      what: `bootserve to stop after npx got SIGTERM (pids ${below.join(' ')}); output:\n${npx.out().slice(-2000)}`,
    });
  },
);
