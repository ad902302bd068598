// Settings that cannot work are refused at start, in one line naming the flag: the advertised
// address (lib/dhcp/address.ts), --ipxe-dir and the boot programs (lib/netboot/ipxe.ts), and the
// command line's own messages (lib/cli.ts: placeholders, flags named, unknown variables).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir, type NetworkInterfaceInfo } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { envName, OPTIONS, parseArgs, proxyFlag, unknownVariables, usage, UsageError } from '../../lib/cli.js';
import { advertisedAddress } from '../../lib/dhcp/address.js';
import { bindMessage } from '../../lib/net/bind.js';
import { checkIpxeDir, findIpxeBinaries, noBootProgram } from '../../lib/netboot/ipxe.js';
import { BIN, KEEP_ROOT } from '../helpers/tools.js';

const iface = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4',
  mac: '00:00:00:00:00:00',
  internal,
  cidr: `${address}/24`,
});
const HOST = { lo: [iface('127.0.0.1', true)], eth0: [iface('198.18.0.2')], eth1: [iface('198.19.0.2')] };

test('--host under --pxe: loopback and addresses this host lacks are refused, naming --pxe and the choices', () => {
  assert.deepEqual(advertisedAddress('198.18.0.2', HOST, '--pxe'), { kind: 'address', address: '198.18.0.2' });
  const loop = advertisedAddress('127.0.0.1', HOST, '--pxe');
  assert.equal(loop.kind, 'refused');
  assert.equal(
    loop.kind === 'refused' && loop.message,
    "--pxe --host 127.0.0.1: a loopback address, which no other machine can reach; " +
    "give this host's address on the boot LAN (this host's: 198.18.0.2, 198.19.0.2)",
  );
  assert.match(JSON.stringify(advertisedAddress('127.0.1.1', { eth0: [iface('198.18.0.2')] }, '--pxe')), /loopback/);
  const absent = advertisedAddress('192.0.2.7', HOST, '--proxy-dhcp');
  assert.equal(
    absent.kind === 'refused' && absent.message,
    "--proxy-dhcp --host 192.0.2.7: not an address of this host; give its address on the boot LAN (this host's: 198.18.0.2, 198.19.0.2)",
  );
  assert.match(
    JSON.stringify(advertisedAddress('::1', HOST, '--pxe')),
    /--pxe advertises an IPv4 address to clients: --host must be one \(got '::1'\)/,
  );
  // No interface listing at all (netlink refused): the bind decides.
  assert.deepEqual(advertisedAddress('192.0.2.7', {}, '--pxe'), { kind: 'address', address: '192.0.2.7' });
  assert.match(JSON.stringify(advertisedAddress(undefined, HOST, '--pxe')), /^.*"--pxe: this host has several IPv4 addresses/);
  assert.equal(proxyFlag({ pxe: true }), '--pxe');
  assert.equal(proxyFlag({ pxe: false }), '--proxy-dhcp');
});

test('least-privilege advice: no setcap on node, no TFTP port above 1023', () => {
  for (const [service, protocol, port] of [['proxyDHCP', 'UDP', 67], ['TFTP', 'UDP', 69], ['HTTP', 'TCP', 80]] as const) {
    const advice = bindMessage({ service, protocol, address: undefined, port }, 'EACCES', '');
    assert.doesNotMatch(advice, /setcap|tftp-port|above 1023/);
    assert.match(advice, /runs as nobody or --user NAME/);
    assert.match(advice, /contrib\/systemd\/tftp\.conf/);
  }
  assert.doesNotMatch(usage(), /setcap|CAP_NET_BIND_SERVICE/);
});

test('--ipxe-dir: missing, not a folder, unreadable are refused naming the flag', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-checks-'));
  try {
    assert.equal(checkIpxeDir(undefined), undefined);
    assert.equal(checkIpxeDir(dir), undefined);
    assert.equal(checkIpxeDir('/no/such/dir'), '--ipxe-dir /no/such/dir: no such directory');
    writeFileSync(join(dir, 'file'), '');
    assert.equal(checkIpxeDir(join(dir, 'file')), `--ipxe-dir ${join(dir, 'file')}: not a directory`);
    if (process.getuid?.() !== 0) {
      chmodSync(dir, 0);
      assert.match(checkIpxeDir(dir) ?? '', /cannot read it \(EACCES\)/);
      chmodSync(dir, 0o700);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no boot program for any firmware: one refusal naming the three ways to get them', () => {
  const root = mkdtempSync(join(tmpdir(), 'bootserve-checks-'));
  try {
    const none = findIpxeBinaries({ root, systemDirs: ['/nonexistent'] });
    assert.equal(
      noBootProgram(none, root, '--pxe'),
      `--pxe: no iPXE boot program for any firmware: put undionly.kpxe and snponly.efi in ${root}/ipxe/, ` +
      `point --ipxe-dir at a folder that has them, or install them: apt install ipxe (Debian/Ubuntu), ` +
      `dnf install ipxe-bootimgs-x86 (Fedora)`,
    );
    const some = findIpxeBinaries({ root, systemDirs: ['/nonexistent'], isFile: (p) => p.endsWith('/ipxe/undionly.kpxe') });
    assert.equal(noBootProgram(some, root, '--pxe'), undefined);
    assert.equal(some.banner().length, 2, 'one line for BIOS, one summary for the rest');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('help: real placeholders, one column, nothing run together', () => {
  const text = usage();
  assert.doesNotMatch(text, /VALUE/);
  for (const [name, opt] of Object.entries(OPTIONS)) {
    const line = text.split('\n').find((l) => new RegExp(`^ {2}(-\\w, | {4})--${name}${opt.value ? ` ${opt.value}` : ''} `).test(l)) ?? '';
    assert.ok(line, `--${name} in the help`);
    assert.match(line, new RegExp(`--${name}${opt.value ? ` ${opt.value}` : ''}\\s{2,}\\S`), `--${name}: flag and text apart`);
    if (opt.kind !== 'flag') assert.match(opt.value ?? '', /^(SECONDS|ADDR|N|DIR|PORT|SIZE|NAME|FORMAT|ENTRY|ADDR:PORT)$/, name);
  }
  const starts = new Set(
    text
      .split('\n')
      .filter((l) => /^ {2}(-\w, | {4})--/.test(l))
      .map((l) => /^(.*?--\S+(?: \S+)?\s+)\S/.exec(l)?.[1]?.length),
  );
  assert.equal(starts.size, 1, 'every description starts in the same column');
  assert.ok(text.split('\n').every((l) => l.length <= 100), 'lines fit 100 columns');
});

test('errors name the flag or the variable to change', () => {
  const message = (argv: string[], env: Record<string, string> = {}) => {
    try {
      parseArgs(argv, env);
    } catch (err) {
      assert.ok(err instanceof UsageError);
      return err.message;
    }
    return assert.fail('expected a usage error');
  };
  assert.equal(message(['--port', 'http']), "--port: expected a port, 0 to 65535, got 'http'");
  assert.equal(message(['--tftp-port']), '--tftp-port needs a value (PORT)');
  assert.equal(
    message([], { BOOTSERVE_STALL_TIMEOUT: 'x' }),
    "BOOTSERVE_STALL_TIMEOUT (--stall-timeout): invalid duration 'x' (use e.g. 10, 10s, 500ms, 2m)",
  );
  assert.match(message([], { PORT: '99999' }), /^PORT \(the environment, for --port\): expected a port/);
  assert.match(message(['--admin-listen', 'x']), /^--admin-listen: expected ADDR:PORT/);
  assert.equal(
    parseArgs(['--user', 'netboot']).kind === 'serve' && (parseArgs(['--user', 'netboot']) as { config: { user: string } }).config.user,
    'netboot',
  );
});

test('unknown BOOTSERVE_* variables are warned about, with the nearest option', () => {
  assert.deepEqual(unknownVariables({ BOOTSERVE_PORT: '1', BOOTSERVE_E2E: 'required', BOOTSERVE_E2E_ASSETS: '/x', PATH: '/bin' }), []);
  assert.deepEqual(unknownVariables({ BOOTSERVE_STALL_TIMOUT: '30s', BOOTSERVE_COLOUR: '1' }), [
    'warning: BOOTSERVE_COLOUR is not a bootserve option and is ignored (options: bootserve --help)',
    'warning: BOOTSERVE_STALL_TIMOUT is not a bootserve option and is ignored; ' +
    'did you mean BOOTSERVE_STALL_TIMEOUT? (options: bootserve --help)',
  ]);
  assert.equal(envName('no-listing'), 'BOOTSERVE_NO_LISTING');
  assert.deepEqual(unknownVariables({ BOOTSERVE_HELP: '1' }).length, 1, 'help is no variable');
});

/** The built command, exit code and stderr lines; root keeps root (not what this is about). */
function run(args: string[], env: Record<string, string> = {}) {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(BOOTSERVE_|PORT$)/.test(k)) clean[k] = v;
  const r = spawnSync(process.execPath, [BIN, ...KEEP_ROOT, ...args], { encoding: 'utf8', timeout: 15_000, env: { ...clean, ...env } });
  return { status: r.status, err: r.stderr.trim().split('\n').filter(Boolean), out: r.stdout };
}

test('the binary refuses at start, one line each, exit 1: loopback --host, --ipxe-dir missing, no iPXE at all', () => {
  const root = mkdtempSync(join(tmpdir(), 'bootserve-checks-'));
  const empty = mkdtempSync(join(tmpdir(), 'bootserve-checks-'));
  try {
    const loop = run(['--pxe', '--host', '127.0.0.1', '--port', '0', root]);
    assert.equal(loop.status, 1);
    assert.equal(loop.err.length, 1, loop.err.join('\n'));
    assert.match(loop.err[0] as string, /^bootserve: --pxe --host 127\.0\.0\.1: a loopback address/);
    const dir = run(['--tftp', '--tftp-port', '0', '--host', '127.0.0.1', '--port', '0', '--ipxe-dir', '/no/such/dir', root]);
    assert.equal(dir.status, 1);
    assert.deepEqual(dir.err, ['bootserve: --ipxe-dir /no/such/dir: no such directory']);
    // No iPXE anywhere: an empty --ipxe-dir and no ipxe/ in the folder. The host's only address
    // may not exist (CI); the iPXE check comes after the address, so give one it has.
    const address = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;
    if (address) {
      const none = run(['--pxe', '--host', address, '--port', '0', '--ipxe-dir', empty, root]);
      assert.equal(none.status, 1);
      assert.equal(none.err.length, 1, none.err.join('\n'));
      assert.match(
        none.err[0] as string,
        new RegExp(
          /^bootserve: --pxe: no iPXE boot program for any firmware: put undionly\.kpxe and snponly\.efi in .*\/ipxe\/,/.source +
          / point --ipxe-dir at a folder that has them, or install them: apt install ipxe/.source,
        ),
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  }
});

test('the binary: a busy port names --port; a --host this host lacks is one clear line; unknown variables warned', async () => {
  const root = mkdtempSync(join(tmpdir(), 'bootserve-checks-'));
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  try {
    const port = (busy.address() as AddressInfo).port;
    const inUse = run(['--host', '127.0.0.1', '--port', String(port), root]);
    assert.equal(inUse.status, 1);
    assert.deepEqual(inUse.err, [`bootserve: HTTP: port ${port} is already in use (127.0.0.1:${port}); choose another with --port`]);
    const absent = run(['--host', '192.0.2.254', '--port', '0', root]);
    assert.equal(absent.status, 1);
    assert.deepEqual(absent.err, [
      'bootserve: HTTP: cannot listen on port 0 (192.0.2.254:0): 192.0.2.254 is not an address of this host (--host)',
    ]);
    const typo = run(['--print-menu', root], { BOOTSERVE_STALL_TIMOUT: '30s' });
    assert.equal(typo.status, 0);
    assert.match(typo.out, /^#!ipxe/);
    const warned = run(['--host', '127.0.0.1', '--port', String(port), root], { BOOTSERVE_STALL_TIMOUT: '30s' });
    assert.match(
      warned.err.join('\n'),
      /warning: BOOTSERVE_STALL_TIMOUT is not a bootserve option and is ignored; did you mean BOOTSERVE_STALL_TIMEOUT\?/,
    );
  } finally {
    busy.close();
    rmSync(root, { recursive: true, force: true });
  }
});
