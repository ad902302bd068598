import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { DEFAULTS, parseArgs, parseDuration, usage, UsageError } from '../../lib/cli.js';
import { spawnBinary } from '../helpers/server.js';
import { tempRoot } from '../helpers/temp.js';
import { KEEP_ROOT } from '../helpers/tools.js';

const BIN = fileURLToPath(new URL('../../bin/bootserve.js', import.meta.url));

test('defaults: the current directory, port 8080, 10 s stall window', () => {
  const inv = parseArgs([], {});
  assert.equal(inv.kind, 'serve');
  assert.deepEqual(inv.kind === 'serve' && inv.config, { ...DEFAULTS, root: '.' });
});

test('flags, short flags, --x=y, and the environment (flags win)', () => {
  const inv = parseArgs(
    ['-p', '9000', '--host=::1', '--stall-timeout', '500ms', '--no-listing', '--dotfiles', '-q', '--log-format', 'json', 'dir'],
    { BOOTSERVE_PORT: '1', BOOTSERVE_HEADER_TIMEOUT: '2m', BOOTSERVE_NO_ADMIN: 'true' },
  );
  assert.equal(inv.kind, 'serve');
  if (inv.kind !== 'serve') return;
  const c = inv.config;
  assert.equal(c.port, 9000);
  assert.equal(c.host, '::1');
  assert.equal(c.stallTimeoutMs, 500);
  assert.equal(c.listing, false);
  assert.equal(c.dotfiles, true);
  assert.equal(c.quiet, true);
  assert.equal(c.logFormat, 'json');
  assert.equal(c.headerTimeoutMs, 120_000);
  assert.equal(c.admin, false);
  assert.equal(c.root, 'dir');
  const env = parseArgs([], { PORT: '7000', BOOTSERVE_MAX_CONNECTIONS_PER_IP: '3', BOOTSERVE_DOTFILES: '0' });
  assert.equal(env.kind === 'serve' && env.config.port, 7000);
  assert.equal(env.kind === 'serve' && env.config.maxConnectionsPerIp, 3);
  assert.equal(env.kind === 'serve' && env.config.dotfiles, false);
  assert.equal(parseArgs(['--print-menu', 'd']).kind, 'print-menu');
  assert.equal(parseArgs(['--', '-dir']).kind === 'serve', true);
});

test('durations: seconds by default, ms, s, m, h', () => {
  assert.equal(parseDuration('10'), 10_000);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.throws(() => parseDuration('soon'), UsageError);
});

test('bad invocations are usage errors', () => {
  for (const argv of [
    ['--nope'],
    ['-x'],
    ['--port'],
    ['--port', 'http'],
    ['--port', '70000'],
    ['--stall-timeout', 'forever'],
    ['--log-format', 'xml'],
    ['--max-connections', '0'],
    ['a', 'b'],
    ['--dotfiles=maybe'],
    ['--host='],
  ]) {
    assert.throws(() => parseArgs(argv, {}), UsageError, argv.join(' '));
  }
  assert.throws(() => parseArgs([], { BOOTSERVE_STALL_TIMEOUT: 'x' }), UsageError);
  assert.equal(parseArgs(['--help']).kind, 'help');
  assert.equal(parseArgs(['-V']).kind, 'version');
  assert.match(usage(), /--stall-timeout/);
});

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...KEEP_ROOT, ...args], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, ...env } });
}

test('the binary: --help, --version, exit 2 on bad flags, exit 1 on a bad directory', (t) => {
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: bootserve/);
  assert.match(run(['--version']).stdout, /^\d+\.\d+\.\d+/);
  const bad = run(['--bogus']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /unknown option '--bogus'.*--help/);
  const missing = run(['/nonexistent/artifacts']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /directory not found: \/nonexistent\/artifacts/);
  const root = tempRoot({ file: 'x' }, t);
  const notDir = run([`${root}/file`]);
  assert.equal(notDir.status, 1);
  assert.match(notDir.stderr, /not a directory/);
});

test('the binary: a port in use exits 1 naming the port', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as { port: number }).port;
  const result = run(['-H', '127.0.0.1', '-p', String(port), tempRoot({}, t)]);
  blocker.close();
  assert.equal(result.status, 1);
  assert.match(result.stderr, new RegExp(`port ${port} is already in use`));
});

test('the binary serves, prints where, and exits 0 on SIGTERM', async (t) => {
  const root = tempRoot({ 'boot.ipxe': '#!ipxe\n' }, t);
  const { child, out, err } = await spawnBinary(t, ['-H', '127.0.0.1', '-p', '0', '--stall-timeout', '0', root]);
  const url = /listening on (http:\/\/\S+\/)\n/.exec(out())?.[1] as string;
  assert.match(out(), /iPXE: chain http:\/\/127\.0\.0\.1:\d+\/boot\.ipxe/);
  const res = await globalThis.fetch(url + 'boot.ipxe');
  assert.equal(await res.text(), '#!ipxe\n');
  const code = await new Promise((resolve) => {
    child.on('exit', resolve);
    child.kill('SIGTERM');
  });
  assert.equal(code, 0);
  assert.match(err(), /--stall-timeout 0 disables/);
});

test('by default one dual-stack socket answers on IPv4 and IPv6, and the banner lists addresses', async (t) => {
  const root = tempRoot({ 'boot.ipxe': '#!ipxe\n' }, t);
  const { out } = await spawnBinary(t, ['-p', '0', root]);
  const urls = [...out().matchAll(/listening on (http:\/\/\S+)\n/g)].map((m) => m[1] as string);
  assert.ok(urls.length >= 1, out());
  const port = new URL(urls[0] as string).port;
  assert.equal(await (await globalThis.fetch(`http://127.0.0.1:${port}/boot.ipxe`)).text(), '#!ipxe\n');
  const v6 = await globalThis.fetch(`http://[::1]:${port}/boot.ipxe`).then((r) => r.status, (e: Error) => e.message);
  if (v6 !== 200) t.diagnostic(`IPv6 loopback not available here: ${v6}`);
});
