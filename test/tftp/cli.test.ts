// TFTP's flags and its one-line start-up errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { parseArgs, UsageError } from '../../lib/cli.js';
import { bindMessage } from '../../lib/net/bind.js';
import { listenAddresses } from '../../lib/tftp/server.js';
import { tempRoot } from '../helpers/temp.js';
import { BIN, KEEP_ROOT } from '../helpers/tools.js';

const config = (argv: string[], env = {}) => {
  const inv = parseArgs(argv, env);
  assert.equal(inv.kind, 'serve');
  return inv.kind === 'serve' ? inv.config : undefined;
};

test('--tftp and its limits, as flags and as BOOTSERVE_* variables', () => {
  const off = config([]);
  assert.deepEqual(
    [off?.tftp, off?.tftpPort, off?.tftpMaxBlksize, off?.tftpTimeoutMs, off?.tftpMaxTransfers, off?.tftpMaxPerClient],
    [false, 69, 1468, 30_000, 1024, 16],
  );
  const on = config([
    '--tftp',
    '--tftp-port',
    '6969',
    '--tftp-max-blksize',
    '8192',
    '--tftp-timeout',
    '10s',
    '--tftp-max-transfers',
    '9',
    '--tftp-max-per-client',
    '2',
  ]);
  assert.deepEqual(
    [on?.tftp, on?.tftpPort, on?.tftpMaxBlksize, on?.tftpTimeoutMs, on?.tftpMaxTransfers, on?.tftpMaxPerClient],
    [true, 6969, 8192, 10_000, 9, 2],
  );
  const env = config([], { BOOTSERVE_TFTP: '1', BOOTSERVE_TFTP_PORT: '1069' });
  assert.deepEqual([env?.tftp, env?.tftpPort], [true, 1069]);
  assert.throws(() => parseArgs(['--tftp-max-blksize', '7']), UsageError);
  assert.throws(() => parseArgs(['--tftp-max-blksize', '65465']), UsageError);
  assert.throws(() => parseArgs(['--tftp-timeout', '100ms']), UsageError);
  assert.throws(() => parseArgs(['--tftp-port', '70000']), UsageError);
});

test('listen addresses: --host alone, else every local address (a wildcard cannot say where a request came)', () => {
  assert.deepEqual(listenAddresses('127.0.0.1'), ['127.0.0.1']);
  const all = listenAddresses(undefined);
  assert.ok(all.includes('127.0.0.1'));
  assert.ok(listenAddresses('0.0.0.0').every((a) => !a.includes(':')), 'IPv4 only');
});

test('bind failures name the port and the cure', () => {
  const tftp = (address: string) => ({
    service: 'TFTP',
    protocol: 'UDP' as const,
    address,
    port: 69,
    usualSuspects: 'another TFTP server: tftpd-hpa?',
  });
  assert.match(bindMessage(tftp('0.0.0.0'), 'EADDRINUSE', ''), /^TFTP: UDP port 69 is already in use \(.*tftpd-hpa/);
  assert.match(bindMessage(tftp('192.0.2.1'), 'EACCES', ''), /permission denied for UDP port 69 on 192\.0\.2\.1: .*CAP_NET_BIND_SERVICE/);
  assert.match(bindMessage(tftp('::1'), 'EINVAL', 'bad'), /cannot listen on UDP port 69 on \[::1\]: bad/);
  // HTTP's privileged port gets the same advice, and a busy port names the flag.
  assert.match(
    bindMessage({ service: 'HTTP', protocol: 'TCP', address: undefined, port: 80, portFlag: '--port' }, 'EACCES', ''),
    /ports below 1024 need root .*CAP_NET_BIND_SERVICE/,
  );
  assert.match(
    bindMessage({ service: 'HTTP', protocol: 'TCP', address: undefined, port: 8080, portFlag: '--port' }, 'EADDRINUSE', ''),
    /^HTTP: port 8080 is already in use; choose another with --port$/,
  );
  assert.match(
    bindMessage({ service: 'HTTP', protocol: 'TCP', address: '192.0.2.9', port: 8080 }, 'EADDRNOTAVAIL', ''),
    /192\.0\.2\.9 is not an address of this host \(--host\)/,
  );
});

test('a busy TFTP port: one line on stderr that names it, exit 1', async (t) => {
  const holder = createSocket('udp4');
  await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
  t.after(() => holder.close());
  const port = holder.address().port;
  const r = spawnSync(
    process.execPath,
    [BIN, ...KEEP_ROOT, tempRoot({}, t), '--tftp', '--tftp-port', String(port), '--port', '0', '--host', '127.0.0.1'],
    {
      encoding: 'utf8',
      timeout: 10_000,
    },
  );
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`UDP port ${port} on 127\\.0\\.0\\.1 is already in use`));
});
