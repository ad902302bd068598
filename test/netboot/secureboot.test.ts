// The Secure Boot path's pure parts: the Authenticode check, the chain lookup (served folder,
// --secure-boot-dir, the system's packages), what a GRUB image can do, the catalog's names and
// choice per machine, and the DHCP policy's boot file for the signed path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { parseArgs, secureBootMacs, UsageError } from '../../lib/cli.js';
import { decide, type PolicyConfig } from '../../lib/dhcp/policy.js';
import { peSignature } from '../../lib/netboot/authenticode.js';
import { findBootFiles } from '../../lib/netboot/catalog.js';
import { findIpxeBinaries } from '../../lib/netboot/ipxe.js';
import { findSignedChains, grubAbilities } from '../../lib/netboot/signed.js';
import { MAC, requestPacket } from '../helpers/dhcp.js';
import { secureBootAssetsDir } from '../helpers/lab.js';
import { download, startTftp } from '../helpers/tftp.js';
import { BIN, get } from '../helpers/tools.js';

// ---------------------------------------------------------------------------------------------
// A PE image as small as the check needs: MZ, PE\0\0, a PE32+ optional header with 16 data
// directories, and (signed) a WIN_CERTIFICATE at the end that the security directory points to.

interface FakePe {
  signed?: boolean;
  certType?: number;
  magic?: number;
  /** Security directory pointing past the end of the file. */
  outside?: boolean;
  text?: string;
}

function fakePe(spec: FakePe = {}): Buffer {
  const pe = 0x80;
  const optional = pe + 24;
  const magic = spec.magic ?? 0x20b;
  const counts = magic === 0x10b ? 92 : 108;
  const optionalSize = counts + 4 + 16 * 8;
  const body = Buffer.from(spec.text ?? '', 'latin1');
  const certAt = optional + optionalSize + 64 + body.length;
  const cert = Buffer.alloc(8 + 32);
  cert.writeUInt32LE(cert.length, 0);
  cert.writeUInt16LE(0x0200, 4);
  cert.writeUInt16LE(spec.certType ?? 2, 6);
  const image = Buffer.alloc(certAt + (spec.signed ? cert.length : 0));
  image.write('MZ', 0, 'latin1');
  image.writeUInt32LE(pe, 0x3c);
  image.write('PE\0\0', pe, 'latin1');
  image.writeUInt16LE(0x8664, pe + 4);
  image.writeUInt16LE(optionalSize, pe + 20);
  image.writeUInt16LE(magic, optional);
  image.writeUInt32LE(16, optional + counts);
  body.copy(image, optional + optionalSize + 64);
  if (spec.signed) {
    const entry = optional + counts + 4 + 4 * 8;
    image.writeUInt32LE(spec.outside ? certAt + 4096 : certAt, entry);
    image.writeUInt32LE(cert.length, entry + 4);
    cert.copy(image, certAt);
  }
  return image;
}

const GRUB_212 =
  'grub,4,Free Software Foundation,grub,2.12,https://www.gnu.org/software/grub/\nsetting values from proxy offer\nUser-Agent: GRUB 2.12-9';
const GRUB_206 = 'grub,1,Free Software Foundation,grub,2.06,https://www.gnu.org/software/grub/\n';

test('peSignature: a PKCS#7 WIN_CERTIFICATE in the certificate table is a signature', () => {
  assert.deepEqual(peSignature(fakePe({ signed: true })), { kind: 'signed', certificateBytes: 32 });
  assert.equal(peSignature(fakePe({ signed: true, magic: 0x10b })).kind, 'signed', 'PE32 too');
  assert.equal(peSignature(fakePe()).kind, 'unsigned');
  assert.match((peSignature(fakePe()) as { reason: string }).reason, /empty/);
  assert.match((peSignature(fakePe({ signed: true, certType: 1 })) as { reason: string }).reason, /not PKCS#7/);
  assert.match((peSignature(fakePe({ signed: true, outside: true })) as { reason: string }).reason, /outside the file/);
  assert.equal(peSignature(Buffer.from('#!ipxe\necho hello\n'.repeat(8))).kind, 'not-pe');
  assert.equal(peSignature(fakePe({ magic: 0x999 })).kind, 'not-pe');
  const truncated = fakePe({ signed: true }).subarray(0, 0x90);
  assert.equal(peSignature(truncated).kind, 'not-pe');
});

test('grubAbilities: Debian 13 GRUB 2.12 follows proxyDHCP and has http; 2.06 neither', () => {
  assert.deepEqual(grubAbilities(fakePe({ text: GRUB_212 })), { version: '2.12', followsProxyDhcp: true, http: true });
  assert.deepEqual(grubAbilities(fakePe({ text: GRUB_206 })), { version: '2.06', followsProxyDhcp: false, http: false });
});

// ---------------------------------------------------------------------------------------------
// Trees laid out like / for the lookup.

function tree(files: Record<string, Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-sb-test-'));
  for (const [rel, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), bytes);
  }
  return dir;
}

const SIGNED = fakePe({ signed: true, text: GRUB_212 });
const DEBIAN_X64 = {
  'usr/lib/shim/shimx64.efi.signed': SIGNED,
  'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': SIGNED,
};
const DEBIAN_ARM64 = {
  'usr/lib/shim/shimaa64.efi.signed': SIGNED,
  'usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed': SIGNED,
};

test('findSignedChains: --secure-boot-dir first, then the system; served names as shim expects', (t) => {
  const root = tree({});
  const dir = tree({ ...DEBIAN_X64 });
  const system = tree({ ...DEBIAN_X64, ...DEBIAN_ARM64 });
  t.after(() => [root, dir, system].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const catalog = findSignedChains({ root, secureBootDir: dir, systemRoot: system });
  assert.deepEqual(catalog.refusals, []);
  const x64 = catalog.chainFor('efi-x64');
  assert.equal(x64?.shim.path, join(dir, 'usr/lib/shim/shimx64.efi.signed'));
  assert.equal(x64?.shim.source, 'secure-boot-dir');
  assert.equal(x64?.abilities.followsProxyDhcp, true);
  assert.equal(catalog.chainFor('efi-arm64')?.grub.path, join(system, 'usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed'));
  assert.equal(catalog.chainFor('efi-ia32'), undefined);
  assert.equal(catalog.chainFor('bios'), undefined);
  // shim asks //grubx64.efi over HTTP, /grubx64.efi over TFTP.
  assert.equal(catalog.signedFile('//grubx64.efi'), join(dir, 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'));
  assert.equal(catalog.signedFile('shimaa64.efi'), join(system, 'usr/lib/shim/shimaa64.efi.signed'));
  assert.equal(catalog.signedFile('grubnetx64.efi.signed'), undefined);
  const banner = catalog.banner().join('\n');
  assert.match(
    banner,
    new RegExp(
      /Secure Boot for UEFI x64: shimx64\.efi \(from .*shimx64\.efi\.signed\)/.source +
      / → grubx64\.efi \(from .*grubnetx64\.efi\.signed\) \(Debian\/Ubuntu GRUB 2\.12, has http\)/.source,
    ),
  );
  assert.match(banner, /Secure Boot for UEFI ARM64: shimaa64\.efi/);
  assert.doesNotMatch(banner, /warning/);
});

test('findSignedChains: the served folder wins; a Fedora tree is found; a missing pair is named with its packages', (t) => {
  const root = tree({ 'shimx64.efi': SIGNED, 'grubx64.efi': SIGNED });
  const fedora = tree({ 'boot/efi/EFI/fedora/shimaa64.efi': SIGNED, 'boot/efi/EFI/fedora/grubaa64.efi': SIGNED });
  const empty = tree({});
  t.after(() => [root, fedora, empty].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const catalog = findSignedChains({ root, systemRoot: fedora });
  assert.equal(catalog.chainFor('efi-x64')?.shim.source, 'served');
  // Served files are served as any file: no name mapping for them.
  assert.equal(catalog.signedFile('shimx64.efi'), undefined);
  assert.equal(catalog.chainFor('efi-arm64')?.distribution, 'Fedora');
  const none = findSignedChains({ root: empty, systemRoot: empty });
  assert.equal(none.chainFor('efi-x64'), undefined);
  assert.match(
    none.banner().join('\n'),
    new RegExp(
      /Secure Boot for UEFI x64: missing shimx64\.efi \+ grubx64\.efi /.source +
      /.*apt install shim-signed grub-efi-amd64-signed.*UEFI x64 clients get iPXE/.source,
    ),
  );
});

test('findSignedChains: an unsigned binary in a signed role is refused with one line naming the fix', (t) => {
  const root = tree({});
  const dir = tree({
    'usr/lib/shim/shimx64.efi.signed': SIGNED,
    'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': fakePe({ text: GRUB_212 }),
  });
  t.after(() => [root, dir].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const catalog = findSignedChains({ root, secureBootDir: dir, systemRoot: root });
  assert.equal(catalog.chainFor('efi-x64'), undefined);
  assert.equal(catalog.refusals.length, 1);
  const line = catalog.refusals[0] as string;
  assert.doesNotMatch(line, /\n/);
  assert.match(
    line,
    new RegExp(
      /^refusing .*grubnetx64\.efi\.signed as grubx64\.efi \(GRUB for UEFI x64\):/.source +
      / the certificate table is empty, .*apt install shim-signed grub-efi-amd64-signed/.source,
    ),
  );
});

test('findSignedChains: a GRUB that does not follow proxyDHCP gets a banner line saying what the LAN DHCP server must do', (t) => {
  const root = tree({});
  const old = fakePe({ signed: true, text: GRUB_206 });
  const dir = tree({ 'usr/lib/shim/shimx64.efi.signed': SIGNED, 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': old });
  t.after(() => [root, dir].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const banner = findSignedChains({ root, secureBootDir: dir, systemRoot: root }).banner().join('\n');
  assert.match(banner, /GRUB 2\.06, no http: kernels over TFTP/);
  assert.match(banner, /warning: this GRUB does not follow proxyDHCP .* must set next-server \(siaddr\) to this host/);
});

// ---------------------------------------------------------------------------------------------
// The catalog: names for HTTP/TFTP, the choice per machine.

test('findBootFiles: iPXE and signed names behind one hook; grub/grub.cfg generated; --secure-boot-for picks machines', async (t) => {
  const root = tree({ 'linux/vmlinuz': Buffer.from('k'), 'linux/initrd.img': Buffer.from('i') });
  const system = tree({ ...DEBIAN_X64 });
  const ipxe = tree({ 'snponly.efi': Buffer.from('ipxe') });
  t.after(() => [root, system, ipxe].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const menu = { timeoutMs: 5000, dotfiles: false, httpPort: () => 8080 };
  const ipxeCatalog = findIpxeBinaries({ root, systemDirs: [ipxe] });
  const catalog = findBootFiles({
    root,
    ipxe: ipxeCatalog,
    secureBoot: { kind: 'macs', macs: new Set(['52:54:00:12:34:56']) },
    systemRoot: system,
    menu,
  });
  t.after(() => catalog.close());
  assert.equal(catalog.file('ipxe/snponly.efi'), join(ipxe, 'snponly.efi'));
  assert.equal(catalog.file('/shimx64.efi'), join(system, 'usr/lib/shim/shimx64.efi.signed'));
  assert.equal(catalog.file('nothing.efi'), undefined);
  assert.equal(catalog.signedFor('efi-x64', '52:54:00:12:34:56')?.name, 'shimx64.efi');
  assert.equal(catalog.signedFor('efi-x64', '52:54:00:12:34:57'), undefined, 'not in the list: iPXE');
  assert.equal(catalog.signedFor('efi-arm64', '52:54:00:12:34:56'), undefined, 'no arm64 chain: iPXE');
  const cfg = await catalog.file('/grub/grub.cfg');
  assert.ok(typeof cfg === 'string');
  const text = readFileSync(cfg, 'utf8');
  assert.match(text, /linux "\$\{bootserve_net\}"\/linux\/vmlinuz/);
  assert.match(text, /if \[ "\$grub_cpu" = 'x86_64' \]; then set bootserve_http="\(http,\$\{bootserve_server\}:8080\)"; fi/);
  assert.doesNotMatch(text, /'arm64'/, 'no arm64 GRUB: no http line for it');
  assert.match(catalog.banner().join('\n'), /Secure Boot path for 1 machine\(s\)/);

  const off = findBootFiles({ root, ipxe: ipxeCatalog, secureBoot: { kind: 'off' }, systemRoot: system, menu });
  assert.equal(off.signedFor('efi-x64', '52:54:00:12:34:56'), undefined);
  assert.equal(off.file('shimx64.efi'), undefined);
  assert.equal(off.file('grub/grub.cfg'), undefined);
  assert.deepEqual(off.banner(), []);
  assert.deepEqual(catalog.outside(), [
    join(system, 'usr/lib/shim/shimx64.efi.signed'),
    join(system, 'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'),
  ]);
});

test('cli: --secure-boot, --secure-boot-dir, --secure-boot-for (MACs in any common spelling)', () => {
  const inv = parseArgs(['--pxe', '--secure-boot', '--secure-boot-dir', '/x', 'd']);
  assert.equal(inv.kind, 'serve');
  if (inv.kind !== 'serve') return;
  assert.equal(inv.config.secureBoot, true);
  assert.equal(inv.config.secureBootDir, '/x');
  assert.deepEqual(
    [...secureBootMacs('52-54-00-AB-CD-EF, 525400000001,52:54:00:00:00:02')],
    ['52:54:00:ab:cd:ef', '52:54:00:00:00:01', '52:54:00:00:00:02'],
  );
  assert.throws(
    () => parseArgs(['--secure-boot-for', '52:54:00:zz:00:01', 'd']),
    (e: unknown) => e instanceof UsageError && /not a MAC address/.test(e.message),
  );
});

// ---------------------------------------------------------------------------------------------
// The DHCP policy: shim for the firmware, iPXE stays for everything else.

const SIGNED_CONFIG: PolicyConfig = {
  serverAddress: '192.0.2.10',
  httpPort: 8080,
  binaryFor: (fw) => ({ name: fw === 'bios' ? 'ipxe/undionly.kpxe' : 'ipxe/snponly.efi' }),
  signedFor: (fw, mac) =>
    mac === '52:54:00:12:34:56' ? { name: fw === 'efi-arm64' ? 'shimaa64.efi' : fw === 'efi-x64' ? 'shimx64.efi' : '' } : undefined,
};

function reply(spec: Parameters<typeof requestPacket>[0], port: 'dhcp' | 'proxy' = 'dhcp', config = SIGNED_CONFIG) {
  const d = decide(requestPacket(spec), port, config);
  assert.equal(d.kind, 'reply', JSON.stringify(d));
  return d as Extract<typeof d, { kind: 'reply' }>;
}

test('policy: UEFI PXE x64/arm64 get shim by TFTP name, HTTP Boot by URL; iPXE, BIOS and other MACs unchanged', () => {
  const pxe = reply({ arch: 7 });
  assert.equal(pxe.bootFile, 'shimx64.efi');
  assert.equal(pxe.bootPath, 'signed');
  assert.equal(pxe.client, 'uefi-pxe');
  assert.equal(reply({ arch: 7, type: 3, ciaddr: '192.0.2.50' }, 'proxy').bootFile, 'shimx64.efi', 'the 4011 ACK names shim too');
  assert.equal(reply({ arch: 11, vendorClass: 'PXEClient:Arch:00011:UNDI:003000' }).bootFile, 'shimaa64.efi');
  const http = reply({ arch: 16, vendorClass: 'HTTPClient:Arch:00016:UNDI:003000' });
  assert.equal(http.bootFile, 'http://192.0.2.10:8080/shimx64.efi');
  assert.equal(http.client, 'uefi-http');
  assert.equal(reply({ arch: 19, vendorClass: 'HTTPClient:Arch:00019:UNDI:003000' }).bootFile, 'http://192.0.2.10:8080/shimaa64.efi');
  // iPXE itself (already running: no Secure Boot in its way) keeps getting its script.
  assert.equal(reply({ arch: 7, userClass: 'iPXE' }).bootFile, 'http://192.0.2.10:8080/boot.ipxe');
  assert.equal(reply({ arch: 0 }).bootFile, 'ipxe/undionly.kpxe', 'BIOS: iPXE');
  const other = reply({ arch: 7, chaddr: Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x57]) });
  assert.equal(other.bootFile, 'ipxe/snponly.efi');
  assert.equal(other.bootPath, 'ipxe');
  assert.equal(MAC.length, 6);
});

test("the real chain from scripts/secureboot-assets.sh: signed, and Debian 13's GRUB follows proxyDHCP and has http", (t) => {
  const root = join(secureBootAssetsDir(), 'root');
  if (!existsSync(join(root, 'usr/lib/shim/shimx64.efi.signed'))) return void t.skip(`no ${root} (scripts/secureboot-assets.sh)`);
  const catalog = findSignedChains({ root: tmpdir(), secureBootDir: root, systemRoot: '/nonexistent' });
  assert.deepEqual(catalog.refusals, []);
  for (const firmware of ['efi-x64', 'efi-arm64'] as const) {
    const chain = catalog.chainFor(firmware);
    assert.ok(chain, firmware);
    assert.equal(peSignature(readFileSync(chain.shim.path)).kind, 'signed');
    assert.deepEqual(chain.abilities, { version: '2.12', followsProxyDhcp: true, http: true });
  }
  assert.equal(peSignature(readFileSync(join(secureBootAssetsDir(), 'vmlinuz-amd64'))).kind, 'signed', 'the cloud kernel is signed');
  assert.equal(peSignature(readFileSync(join(secureBootAssetsDir(), 'busybox-amd64'))).kind, 'not-pe');
});

test('bootserve --tftp --secure-boot with an unsigned GRUB in --secure-boot-dir: exits 1 with one line naming the fix', (t) => {
  const root = tree({});
  const dir = tree({
    'usr/lib/shim/shimx64.efi.signed': SIGNED,
    'usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed': fakePe({ text: GRUB_212 }),
  });
  t.after(() => [root, dir].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const r = spawnSync(
    process.execPath,
    [BIN, root, '--tftp', '--tftp-port', '0', '--port', '0', '--host', '127.0.0.1', '--secure-boot', '--secure-boot-dir', dir],
    { encoding: 'utf8', timeout: 15_000 },
  );
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0] as string,
    /^bootserve: refusing .*grubnetx64\.efi\.signed as grubx64\.efi .*apt install shim-signed grub-efi-amd64-signed/,
  );
});

test("app: --tftp --secure-boot serves shimx64.efi, grubx64.efi and a fresh grub/grub.cfg over TFTP and HTTP; " +
"shim's optional files get ERROR 1", async (t) => {
  const dir = tree({ ...DEBIAN_X64 });
  const app = await startTftp({ files: { 'linux/vmlinuz': 'k', 'linux/initrd.img': 'i' }, secureBoot: true, secureBootDir: dir });
  t.after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const httpPort = app.app.http.address().port;
  assert.deepEqual((await download(app.port, '/shimx64.efi')).data, SIGNED);
  assert.deepEqual((await download(app.port, 'grubx64.efi', { blksize: 1024 })).data, SIGNED);
  const cfg = (await download(app.port, '/grub/grub.cfg', { blksize: 1024 })).data.toString();
  assert.match(cfg, new RegExp(`bootserve_http="\\(http,\\$\\{bootserve_server\\}:${httpPort}\\)"`), 'the bound HTTP port');
  assert.match(cfg, /--id 'linux'/);
  // Anew on every request: a folder added since shows up.
  mkdirSync(join(app.root, 'other'));
  writeFileSync(join(app.root, 'other/vmlinuz'), 'k2');
  assert.match((await download(app.port, 'grub/grub.cfg')).data.toString(), /--id 'other'/);
  // GRUB's spelling of the per-machine file maps to the iPXE-style name on disk; a symlink out of the root does not.
  mkdirSync(join(app.root, 'machines'));
  writeFileSync(join(app.root, 'machines/52-54-00-ab-cd-ef.grub.cfg'), 'set bootserve_entry=other\n');
  assert.equal((await download(app.port, '/machines/52:54:00:AB:cd:ef.grub.cfg')).data.toString(), 'set bootserve_entry=other\n');
  symlinkSync(join(dir, 'usr/lib/shim/shimx64.efi.signed'), join(app.root, 'machines/52-54-00-00-00-01.grub.cfg'));
  await assert.rejects(download(app.port, 'machines/52:54:00:00:00:01.grub.cfg'), /ERROR 1|not found/i);
  for (const optional of ['revocations_sku.efi', 'revocations_sbat.efi', 'shim_certificate_0.efi']) {
    const started = performance.now();
    await assert.rejects(download(app.port, optional), /ERROR 1|not found/i, optional);
    assert.ok(performance.now() - started < 1000, `${optional}: answered at once`);
  }
  // shim over HTTP Boot asks //grubx64.efi; GRUB sends Host without the port.
  const grub = await get(`http://127.0.0.1:${httpPort}//grubx64.efi`, { Host: '127.0.0.1' });
  assert.equal(grub.status, 200);
  assert.deepEqual(grub.body, SIGNED);
  const head = await get(`http://127.0.0.1:${httpPort}/grub/grub.cfg`, {}, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.match((await get(`http://127.0.0.1:${httpPort}/grub/grub.cfg`)).body.toString(), /--id 'other'/);
});

test("findBootFiles: the generated grub.cfg lives in a folder of its own, removed by close(); " +
"a killed process's folder is removed by the next", async (t) => {
  const root = tree({ 'linux/vmlinuz': Buffer.from('k') });
  const system = tree({ ...DEBIAN_X64 });
  // A pid that is surely not running: past the kernel's pid_max.
  const stale = join(tmpdir(), 'bootserve-grub-99999999-test');
  mkdirSync(stale, { recursive: true });
  writeFileSync(join(stale, 'grub.cfg'), 'old');
  t.after(() => [root, system, stale].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const catalog = findBootFiles({
    root,
    ipxe: findIpxeBinaries({ root, systemDirs: [] }),
    secureBoot: { kind: 'all' },
    systemRoot: system,
    menu: { timeoutMs: 0, dotfiles: false, httpPort: () => 80 },
  });
  const cfg = await catalog.file('grub/grub.cfg');
  assert.ok(typeof cfg === 'string' && existsSync(cfg));
  assert.ok(dirname(cfg).startsWith(join(tmpdir(), `bootserve-grub-${process.pid}-`)));
  assert.equal(existsSync(stale), false, 'the dead process\'s folder is gone');
  catalog.close();
  assert.equal(existsSync(dirname(cfg)), false);
});
