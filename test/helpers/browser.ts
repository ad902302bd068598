// A real browser for the operator page: Debian's chromium, headless, with a fresh profile in a
// directory of the caller's (removed by the caller), nothing fetched but the page's own URLs.
// Two runs, each bounded: the DOM once the page's script has re-rendered (--dump-dom with a
// virtual time budget: timers run, fetches are waited for), and a screenshot.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const CHROMIUM = 'chromium';

/**
 * Where the tests keep their screenshots: $BOOTSERVE_E2E_ARTIFACTS when set (.ci/run sets it to a
 * folder it keeps, outside the temp directory the suite must leave clean), else `fallback`, a
 * folder of the test's own that it removes. operator-page.png: the e2e PXE boot's;
 * operator-page-fed.png: test/admin-page.test.ts's.
 */
export function artifactsDir(fallback: string): string {
  return process.env.BOOTSERVE_E2E_ARTIFACTS || fallback;
}

const FLAGS = [
  '--headless',
  '--no-sandbox', // the tests run as root
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-default-apps',
  '--hide-scrollbars',
];

export interface Browsed {
  /** The DOM after the page's script ran, serialised. */
  dom: string;
  /** The screenshot's path (PNG). */
  screenshot: string;
}

/** Run chromium once with `args`; resolves with its stdout, rejects past `ms` (and kills it). */
function chromium(args: string[], profile: string, ms: number, cwd: string, wrap: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const command = [...wrap, CHROMIUM, ...FLAGS, `--user-data-dir=${profile}`, ...args];
    const child = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chromium ${args.join(' ')}: no result within ${ms} ms; stderr: ${err.slice(-1500)}`));
    }, ms);
    child.on('error', (e) => (clearTimeout(timer), reject(e)));
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`chromium ${args.join(' ')} exited ${code}; stderr: ${err.slice(-1500)}`));
    });
  });
}

export interface BrowseOptions {
  /** Virtual time the page runs before the DOM is taken (its script re-renders at once, then every 2 s). */
  budgetMs?: number;
  /** The screenshot's height; 1280 wide. */
  height?: number;
  /** Bound on each chromium run. */
  ms?: number;
  /** A command prefix, e.g. `ip netns exec NS` to browse inside a lab's namespace. */
  wrap?: string[];
}

/**
 * Load `url` in headless chromium: its DOM after `budgetMs` of (virtual) time, then a screenshot
 * at `screenshot`. The profile goes under `dir`, which the caller removes.
 */
export async function browse(url: string, dir: string, screenshot: string, options: BrowseOptions = {}): Promise<Browsed> {
  const { budgetMs = 3000, height = 900, ms = 60_000, wrap = [] } = options;
  const profile = join(dir, 'chromium-profile');
  mkdirSync(profile, { recursive: true });
  const dom = await chromium([`--virtual-time-budget=${budgetMs}`, '--dump-dom', url], profile, ms, dir, wrap);
  await chromium(
    [`--virtual-time-budget=${budgetMs}`, `--screenshot=${screenshot}`, `--window-size=1280,${height}`, url],
    profile,
    ms,
    dir,
    wrap,
  );
  return { dom, screenshot };
}
