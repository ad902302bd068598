// Start a bootserve in-process on 127.0.0.1 port 0 over a temporary directory.
import { request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULTS, type Config } from '../../lib/cli.js';
import type { HttpRecord, Logger } from '../../lib/log.js';
import { Metrics } from '../../lib/metrics.js';
import { createBootServer, type BootServer } from '../../lib/http/server.js';
import type { Context } from '../../lib/http/handler.js';
import { makeTempDir, removeDir, writeFiles } from './temp.js';

export { tempRoot } from './temp.js';

export interface TestServer {
  port: number;
  url: string;
  root: string;
  logs: HttpRecord[];
  errors: string[];
  metrics: Metrics;
  server: BootServer;
  /** Resolves with the access record of the next response to finish for `path`. */
  nextLog(path: string): Promise<HttpRecord>;
  close(): Promise<void>;
}

/** The served folder: `root` as given (the caller's), or a temporary one with `files` that close() removes. */
export function serverRoot(options: { files?: Record<string, string | Buffer>; root?: string }): { root: string; remove: () => void } {
  if (options.root !== undefined) return { root: options.root, remove: () => {} };
  const root = makeTempDir();
  writeFiles(root, options.files ?? {});
  return { root, remove: () => removeDir(root) };
}

export async function startServer(options: Partial<Config> & { files?: Record<string, string | Buffer>; root?: string; extra?: Partial<Context> } = {}): Promise<TestServer> {
  const { files, extra, ...overrides } = options;
  const { root, remove } = serverRoot(options);
  const config: Config = { ...DEFAULTS, quiet: true, ...overrides, root };
  const logs: HttpRecord[] = [];
  const errors: string[] = [];
  const waiters: { path: string; resolve: (r: HttpRecord) => void }[] = [];
  const logger: Logger = {
    access: (r) => {
      if (r.protocol !== 'http') return;
      logs.push(r);
      const i = waiters.findIndex((w) => w.path === r.path);
      if (i >= 0) waiters.splice(i, 1)[0]?.resolve(r);
    },
    error: (m) => errors.push(m),
    info: () => {},
  };
  const metrics = new Metrics();
  let shuttingDown = false;
  const server = createBootServer({ config, root, logger, metrics, shuttingDown: () => shuttingDown, ...extra });
  await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
  const port = (server.http.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    root,
    logs,
    errors,
    metrics,
    server,
    nextLog: (path) => new Promise((resolve) => waiters.push({ path, resolve })),
    close: async () => {
      shuttingDown = true;
      await server.shutdown(0);
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
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
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
