import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parseArgs, usage } from '../../lib/cli.js';
import { findIpxeBinaries } from '../../lib/netboot/ipxe.js';
import { fetch, startServer } from '../helpers/server.js';
import { tempRoot } from '../helpers/temp.js';

const BIN = fileURLToPath(new URL('../../bin/bootserve.js', import.meta.url));

test('catalog: the served ipxe/ folder first, then the system dirs; a missing firmware is named with how to get it', (t) => {
  const root = tempRoot({ 'ipxe/undionly.kpxe': 'mine' }, t);
  const system = tempRoot({ 'undionly.kpxe': 'sys', 'ipxe.efi': 'full', 'arm64-efi/snponly.efi': 'arm' }, t);
  const other = tempRoot({ 'ipxe-i386.efi': 'ia32' }, t);
  const c = findIpxeBinaries({ root, systemDirs: [system, other] });
  assert.deepEqual(c.binaryFor('bios'), {
    firmware: 'bios',
    name: 'ipxe/undionly.kpxe',
    path: join(root, 'ipxe/undionly.kpxe'),
    source: 'served',
  });
  assert.deepEqual(c.binaryFor('efi-x64'), {
    firmware: 'efi-x64',
    name: 'ipxe/ipxe.efi',
    path: join(system, 'ipxe.efi'),
    source: 'system',
  });
  assert.equal(c.binaryFor('efi-arm64')?.name, 'ipxe/snponly-arm64.efi');
  assert.equal(c.binaryFor('efi-ia32')?.path, join(other, 'ipxe-i386.efi'));
  assert.equal(c.binaryFor('efi-arm32'), undefined);
  // Only names the root lacks map to outside files.
  assert.equal(c.ipxeFile('ipxe/undionly.kpxe'), undefined);
  assert.equal(c.ipxeFile('ipxe/ipxe.efi'), join(system, 'ipxe.efi'));
  assert.equal(c.ipxeFile('/ipxe/snponly-arm64.efi'), join(system, 'arm64-efi/snponly.efi'));
  assert.equal(c.ipxeFile('ipxe/../etc/passwd'), undefined);
  assert.equal(c.ipxeFile('undionly.kpxe'), undefined);
  const banner = c.banner();
  // One line per firmware that has a binary, one summary line for those without.
  assert.equal(banner.length, 5);
  assert.equal(banner[0], 'iPXE for BIOS: ipxe/undionly.kpxe');
  assert.ok(banner.includes(`iPXE for UEFI x64: ipxe/ipxe.efi (from ${join(system, 'ipxe.efi')})`));
  assert.equal(
    banner.at(-1),
    `iPXE for UEFI ARM32: none (snponly-arm32.efi not in ${root}/ipxe/ nor ${system}, ${other}); those clients get no answer`,
  );
  assert.deepEqual(c.missing(), ['efi-arm32']);
});

test('catalog: --ipxe-dir replaces the system dirs; snponly.efi is preferred over ipxe.efi', (t) => {
  const root = tempRoot({}, t);
  const dir = tempRoot({ 'snponly.efi': 'snp', 'ipxe.efi': 'full' }, t);
  const c = findIpxeBinaries({ root, ipxeDir: dir, systemDirs: ['/nonexistent'] });
  assert.deepEqual(c.binaryFor('efi-x64'), {
    firmware: 'efi-x64',
    name: 'ipxe/snponly.efi',
    path: join(dir, 'snponly.efi'),
    source: 'ipxe-dir',
  });
  assert.equal(c.binaryFor('bios'), undefined);
  assert.deepEqual(c.banner(), [
    `iPXE for UEFI x64: ipxe/snponly.efi (from ${join(dir, 'snponly.efi')})`,
    `iPXE for BIOS, UEFI IA32, UEFI ARM32, UEFI ARM64: none (undionly.kpxe, snponly-i386.efi, snponly-arm32.efi, snponly-arm64.efi ` +
    `not in ${root}/ipxe/ nor ${dir}); those clients get no answer`,
  ]);
  // A directory where a file should be is not a binary.
  mkdirSync(join(root, 'ipxe', 'undionly.kpxe'), { recursive: true });
  assert.equal(findIpxeBinaries({ root, ipxeDir: dir }).binaryFor('bios'), undefined);
  // The real system dirs (whatever this host has) never throw.
  assert.ok(findIpxeBinaries({ root }).banner().length <= 5);
});

test('HTTP: a binary from the system dir is served under its ipxe/ name; the root still wins', async (t) => {
  const system = tempRoot({ 'snponly.efi': 'system-snp' }, t);
  const server = await startServer({ files: { 'ipxe/undionly.kpxe': 'root-undi' }, tftp: true, tftpPort: 0, ipxeDir: system });
  try {
    const efi = await fetch(`${server.url}/ipxe/snponly.efi`);
    assert.equal(efi.status, 200);
    assert.equal(efi.body.toString(), 'system-snp');
    assert.equal(efi.headers['content-type'], 'application/efi');
    const head = await fetch(`${server.url}/ipxe/snponly.efi`, { method: 'HEAD' });
    assert.equal(head.headers['content-length'], '10');
    assert.equal((await fetch(`${server.url}/ipxe/undionly.kpxe`)).body.toString(), 'root-undi');
    assert.equal((await fetch(`${server.url}/ipxe/ipxe.efi`)).status, 404);
  } finally {
    await server.close();
  }
});

test('HTTP: a listing of ipxe/ shows the binaries served from the system dir, with or without ipxe/ in the root', async (t) => {
  const system = tempRoot({ 'snponly.efi': 'system-snp', 'undionly.kpxe': 'system-undi' }, t);
  const bare = await startServer({ tftp: true, tftpPort: 0, ipxeDir: system });
  const mixed = await startServer({
    files: { 'ipxe/undionly.kpxe': 'root-undi', 'ipxe/custom.ipxe': '#!ipxe' },
    tftp: true,
    tftpPort: 0,
    ipxeDir: system,
  });
  try {
    const json = { Accept: 'application/json' };
    assert.equal((await fetch(`${bare.url}/ipxe`)).status, 301);
    const listed = JSON.parse((await fetch(`${bare.url}/ipxe/`, { headers: json })).body.toString()) as { name: string; size: number }[];
    assert.deepEqual(listed.map((e) => `${e.name} ${e.size}`), ['snponly.efi 10', 'undionly.kpxe 11']);
    assert.match((await fetch(`${bare.url}/ipxe/`)).body.toString(), /href="snponly\.efi"/);
    const both = JSON.parse((await fetch(`${mixed.url}/ipxe/`, { headers: json })).body.toString()) as { name: string; size: number }[];
    assert.deepEqual(
      both.map((e) => `${e.name} ${e.size}`),
      ['custom.ipxe 6', 'snponly.efi 10', 'undionly.kpxe 9'],
      "the root's own file wins, as when it is served",
    );
  } finally {
    await bare.close();
    await mixed.close();
  }
  const none = await startServer({});
  try {
    assert.equal((await fetch(`${none.url}/ipxe/`)).status, 404, 'no catalog, no ipxe/ in the root: nothing to list');
  } finally {
    await none.close();
  }
});

test('HTTP: a browser\'s /favicon.ico is 204 when the root has none (no 404 in the log for it)', async () => {
  const s = await startServer({ files: {} });
  const own = await startServer({ files: { 'favicon.ico': 'icon' } });
  try {
    const r = await fetch(`${s.url}/favicon.ico`);
    assert.equal(r.status, 204);
    assert.equal(r.body.length, 0);
    assert.equal((await fetch(`${own.url}/favicon.ico`)).body.toString(), 'icon');
  } finally {
    await s.close();
    await own.close();
  }
});

test('flags: --proxy-dhcp, --pxe (tftp and proxyDHCP), --ipxe-dir, and their BOOTSERVE_* variables', () => {
  const config = (argv: string[], env: Record<string, string> = {}) => {
    const inv = parseArgs(argv, env);
    assert.equal(inv.kind, 'serve');
    return (inv as unknown as { config: Record<string, unknown> }).config;
  };
  assert.equal(config([]).proxyDhcp, false);
  assert.equal(config([]).ipxeDir, undefined);
  assert.equal(config(['--proxy-dhcp']).proxyDhcp, true);
  assert.equal(config(['--proxy-dhcp']).tftp ?? false, false);
  const pxe = config(['--pxe']);
  assert.equal(pxe.proxyDhcp, true);
  assert.equal(pxe.tftp, true);
  assert.equal(pxe.pxe, true, 'kept, so that messages name --pxe');
  assert.equal(config(['--proxy-dhcp']).pxe, false);
  assert.equal(config([], { BOOTSERVE_PXE: '1' }).proxyDhcp, true);
  assert.equal(config([], { BOOTSERVE_PROXY_DHCP: 'yes' }).proxyDhcp, true);
  assert.equal(config(['--ipxe-dir', '/opt/ipxe']).ipxeDir, '/opt/ipxe');
  assert.equal(config([], { BOOTSERVE_IPXE_DIR: '/srv/ipxe' }).ipxeDir, '/srv/ipxe');
  assert.match(usage(), /--proxy-dhcp/);
  assert.match(usage(), /--pxe /);
  assert.match(usage(), /--ipxe-dir DIR/);
});

test('the binary: --proxy-dhcp refuses a --host that is not an IPv4 address, in one line, before binding anything', (t) => {
  const r = spawnSync(process.execPath, [BIN, '--proxy-dhcp', '--host', '::1', '-p', '0', tempRoot({}, t)], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /--host must be one \(got '::1'\)/);
});
