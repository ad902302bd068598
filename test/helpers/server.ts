// Start a bootserve in-process on 127.0.0.1 port 0 over a temporary directory, built by the
// same builder as the real process (lib/app.ts): file cache, admin pages, machines and all.
import { request, type IncomingHttpHeaders } from 'node:http';
import { buildApp, type App } from '../../lib/app.js';
import { DEFAULTS, type Config } from '../../lib/cli.js';
import type { FileCache } from '../../lib/http/filecache.js';
import type { HttpService } from '../../lib/http/server.js';
import type { HttpStats } from '../../lib/http/stats.js';
import { metricsText } from '../../lib/admin/pages.js';
import type { DhcpRecord, HttpRecord, Logger, DhcpLogger } from '../../lib/observe/log.js';
import type { Transfers } from '../../lib/observe/transfers.js';
import { makeTempDir, removeDir, writeFiles } from './temp.js';
import { KEEP_ROOT } from './tools.js';

export interface TestServer {
  port: number;
  url: string;
  root: string;
  logs: HttpRecord[];
  errors: string[];
  app: App;
  server: HttpService;
  /** Every transfer, running and recent. */
  transfers: Transfers;
  /** HTTP's counters (connections, rejections, outcomes). */
  stats: HttpStats;
  /** /-/metrics as the admin page renders it. */
  metricsText(): string;
  /** Resolves with the access record of the next response to finish for `path`. */
  nextLog(path: string): Promise<HttpRecord>;
  /** Shut down (no grace) and remove the temporary directory if this helper made it. */
  close(): Promise<void>;
}

/** The served folder: `root` as given (the caller's), or a temporary one with `files` that close() removes. */
export function serverRoot(options: { files?: Record<string, string | Buffer>; root?: string }): { root: string; remove: () => void } {
  if (options.root !== undefined) return { root: options.root, remove: () => {} };
  const root = makeTempDir();
  writeFiles(root, options.files ?? {});
  return { root, remove: () => removeDir(root) };
}

export interface ServerOptions extends Partial<Config> {
  files?: Record<string, string | Buffer>;
  root?: string;
  /** An open-file cache of the test's own, to read its counters. */
  cache?: FileCache;
}

export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const { files: _files, cache, ...overrides } = options;
  const { root, remove } = serverRoot(options);
  const config: Config = { ...DEFAULTS, quiet: true, host: '127.0.0.1', port: 0, ...overrides, root };
  const logs: HttpRecord[] = [];
  const errors: string[] = [];
  const waiters: { path: string; resolve: (r: HttpRecord) => void }[] = [];
  const logger: Logger & DhcpLogger = {
    access: (r) => {
      if (r.protocol !== 'http') return;
      logs.push(r);
      const i = waiters.findIndex((w) => w.path === r.path);
      if (i >= 0) waiters.splice(i, 1)[0]?.resolve(r);
    },
    dhcp: (_r: DhcpRecord) => {},
    error: (m) => errors.push(m),
    info: () => {},
  };
  const app = buildApp({ config, root, version: '9.9.9', logger, files: cache });
  await app.start();
  const port = app.http.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    root,
    logs,
    errors,
    app,
    server: app.http,
    transfers: app.transfers,
    stats: app.http.stats,
    metricsText: () =>
      metricsText({ version: '9.9.9', root, settings: config, transfers: app.transfers, ready: () => true, services: () => app.services }),
    nextLog: (path) => new Promise((resolve) => waiters.push({ path, resolve })),
    close: async () => {
      await app.shutdown(0);
      remove();
    },
  };
}

export interface Fetched {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a fresh connection; resolves with the whole response. */
export function fetch(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Send raw bytes on a new TCP connection and collect everything until the server closes. */
export async function raw(port: number, text: string, waitMs = 1000): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve(out));
    socket.write(text);
    setTimeout(() => socket.destroy(), waitMs).unref();
  });
}

export interface Running {
  child: import('node:child_process').ChildProcessWithoutNullStreams;
  /** Everything printed so far. */
  out: () => string;
  err: () => string;
}

/** Spawn the built binary and wait for its whole banner (the iPXE line is printed last). */
export async function spawnBinary(t: { after: (fn: () => void) => void }, args: string[]): Promise<Running> {
  const { spawn } = await import('node:child_process');
  const bin = new URL('../../bin/bootserve.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, ...KEEP_ROOT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner: ${out} ${err}`)), 8000);
    child.stdout.on('data', () => {
      if (/iPXE: chain .*\n/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, out: () => out, err: () => err };
}
