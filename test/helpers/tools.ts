// Helpers for tests that drive external tools and the BUILT bootserve (bin/bootserve.js) as a
// child process: tool checks that skip (or fail under BOOTSERVE_E2E=required), a child process
// wrapper with bounded waits, a free port, and a one-shot HTTP GET.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

/**
 * Started as root, bootserve runs as nobody once its ports are bound, and refuses a folder nobody
 * cannot read (a mkdtemp folder is 0700): tests that are not about that keep root.
 */
export const KEEP_ROOT: string[] = process.getuid?.() === 0 ? ['--user', 'root'] : [];

/** The built command, as installed by npm (`bin` in package.json). */
export const BIN = fileURLToPath(new URL('../../bin/bootserve.js', import.meta.url));

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const required = () => process.env.BOOTSERVE_E2E === 'required';

/** Whether `tool` runs (`probe` arguments, exit status 0). */
export function have(tool: string, probe: string[] = ['--version']): boolean {
  const r = spawnSync(tool, probe, { stdio: 'ignore', timeout: 10_000 });
  return r.error === undefined && r.status === 0;
}

/**
 * Skip with a reason when a tool is missing, unless BOOTSERVE_E2E=required makes it a failure.
 * `pkg` is the Debian package that provides it.
 */
export function need(t: TestContext, tool: string, pkg: string, probe: string[] = ['--version']): boolean {
  if (have(tool, probe)) return true;
  if (required()) assert.fail(`${tool} not found and BOOTSERVE_E2E=required (apt-get install ${pkg})`);
  t.skip(`${tool} not found (install it: apt-get install ${pkg})`);
  return false;
}

/** Skip (or fail when required) for a reason other than a missing tool. */
export function skipOrFail(t: TestContext, reason: string): void {
  if (required()) assert.fail(`${reason} and BOOTSERVE_E2E=required`);
  t.skip(reason);
}

export interface Child {
  proc: ChildProcess;
  /** Complete stdout lines so far. */
  lines: string[];
  stderr(): string;
  /** Resolves with the first stdout line (past or future) matching `re`; rejects after `ms`. */
  waitForLine(re: RegExp, ms?: number): Promise<string>;
  /** Resolves with the exit code (or signal name) once the process exits; rejects after `ms`. */
  exited(ms?: number): Promise<number | string>;
  /** SIGTERM, then SIGKILL after `ms` if it is still there. Safe to call twice. */
  stop(ms?: number): Promise<void>;
}

/** Start a process with piped output; register `t.after(() => child.stop())` yourself. */
export function start(cmd: string, args: string[], options: SpawnOptions = {}): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const lines: string[] = [];
  let partial = '';
  let err = '';
  const watchers: { re: RegExp; resolve: (l: string) => void }[] = [];
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      for (let i = watchers.length - 1; i >= 0; i--) {
        const w = watchers[i] as (typeof watchers)[number];
        if (w.re.test(line)) {
          watchers.splice(i, 1);
          w.resolve(line);
        }
      }
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | string>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
    proc.on('error', (e) => resolve(`spawn error: ${e.message}`));
  });
  const bounded = <T>(p: Promise<T>, ms: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`timed out after ${ms} ms waiting for ${what}; stderr: ${err.slice(-2000)}; stdout: ${lines.slice(-20).join('\n')}`),
          ),
        ms,
      );
      p.then(
        (v) => (clearTimeout(timer), resolve(v)),
        (e: unknown) => (clearTimeout(timer), reject(e as Error)),
      );
    });
  const child: Child = {
    proc,
    lines,
    stderr: () => err,
    waitForLine: (re, ms = 15_000) => {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      const found = new Promise<string>((resolve, reject) => {
        watchers.push({ re, resolve });
        void exit.then((code) => reject(new Error(`${cmd} exited (${code}) before printing ${re}; stderr: ${err.slice(-2000)}`)));
      });
      return bounded(found, ms, `${re} from ${cmd}`);
    },
    exited: (ms = 15_000) => bounded(exit, ms, `${cmd} to exit`),
    stop: async (ms = 5_000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
      await exit;
      clearTimeout(timer);
    },
  };
  return child;
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for tools that cannot take port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One GET (or other method) on a fresh connection, bounded by `ms`. */
export function get(url: string, headers: Record<string, string> = {}, { method = 'GET', ms = 30_000 } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, timeout: ms }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`${url}: response aborted after ${Buffer.concat(chunks).length} bytes`)));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${ms} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Why the built command cannot be started as nobody (uid 65534) here, or undefined when it can:
 * the node binary or the checkout may sit where nobody cannot read (a Node under /root/.cache).
 */
export function cannotRunAsNobody(): string | undefined {
  if (process.getuid?.() !== 0) return 'runs as root only (it starts bootserve as nobody)';
  const r = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(BIN)})`], {
    uid: 65534,
    gid: 65534,
    stdio: 'ignore',
    timeout: 10_000,
  });
  if (r.status !== 0) return `nobody cannot run ${process.execPath} ${BIN} here`;
  return undefined;
}
