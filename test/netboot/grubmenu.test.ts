// The generated grub/grub.cfg: same entries as boot.ipxe (microcode first, cmdline), quoting,
// retries, the per-machine file, HTTP where GRUB has it, and no insmod.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { classifyEntries, RETRY_ATTEMPTS } from '../../lib/netboot/bootmenu.js';
import { generateGrubMenu, grubQuote, renderGrubMenu } from '../../lib/netboot/grubmenu.js';

const files = (...paths: string[]) => paths.map((relPath) => ({ relPath, isFile: true }));
const BASE = { timeoutMs: 5000, httpPort: 8080, httpFor: { x86_64: true, arm64: false } };

test('grubQuote: single quotes, a quote inside survives', () => {
  assert.equal(grubQuote('a b'), "'a b'");
  assert.equal(grubQuote("it's"), "'it'\\''s'");
  assert.equal(grubQuote('$x;{y}'), "'$x;{y}'");
});

test('renderGrubMenu: a Linux entry loads the kernel with its cmdline, microcode first, each step retried', () => {
  const entries = classifyEntries(
    files('debian/vmlinuz', 'debian/initrd.img', 'debian/intel-ucode.img', 'debian/firmware.cpio.gz', 'debian/cmdline'),
  );
  const linux = entries[0];
  assert.ok(linux?.kind === 'linux');
  linux.cmdline = "console=ttyS0 quiet msg='hi there'";
  const cfg = renderGrubMenu(entries, BASE);
  assert.match(cfg, /menuentry 'Linux: debian\/ \(vmlinuz \+ intel-ucode\.img \+ initrd\.img \+ firmware\.cpio\.gz\)' --id 'debian' \{/);
  assert.match(
    cfg,
    new RegExp(
      /if linux "\$\{bootserve_net\}"\/debian\/vmlinuz 'console=ttyS0' 'quiet' 'msg='\\''hi' 'there'\\''';/.source +
      / then set bootserve_ok=1; break; fi/.source,
    ),
  );
  assert.match(
    cfg,
    new RegExp(
      /if initrd "\$\{bootserve_net\}"\/debian\/intel-ucode\.img /.source +
      /"\$\{bootserve_net\}"\/debian\/initrd\.img "\$\{bootserve_net\}"\/debian\/firmware\.cpio\.gz; then/.source,
    ),
  );
  assert.match(cfg, new RegExp(`for try in ${Array.from({ length: RETRY_ATTEMPTS }, (_, i) => i + 1).join(' ')}; do`));
  assert.match(cfg, /bootserve: kernel: try \$try of 5 failed, trying again in 3 s/);
  assert.match(cfg, /bootserve: initrd: try \$try of 5 failed/);
  assert.match(cfg, /set default='debian'\nset timeout=5\n/);
  assert.doesNotMatch(cfg, /insmod/, 'no module from the server: Secure Boot refuses them');
});

test('renderGrubMenu: files the way GRUB came ($root) by default; HTTP offered where this GRUB has it', () => {
  const entries = classifyEntries(files('vmlinuz'));
  const cfg = renderGrubMenu(entries, BASE);
  assert.match(cfg, /set bootserve_net="\(\$root\)"\nif \[ -z "\$root" \]; then set bootserve_net="\$bootserve_tftp"; fi/);
  assert.match(cfg, /set bootserve_tftp="\(tftp,\$\{bootserve_server\}\)"/);
  assert.match(cfg, /if \[ "\$grub_cpu" = 'x86_64' \]; then set bootserve_http="\(http,\$\{bootserve_server\}:8080\)"; fi/);
  assert.doesNotMatch(cfg, /'arm64'/, 'that GRUB has no http');
  assert.match(
    renderGrubMenu(entries, { ...BASE, transport: 'http' }),
    /if \[ -n "\$bootserve_http" \]; then set bootserve_net="\$bootserve_http"; fi/,
  );
  // The server from the device GRUB came from, else the DHCP one.
  assert.match(cfg, /regexp --set=1:bootserve_server '\^\[a-z\]\+,\(\[\^:,\]\+\)' "\$root"/);
  assert.match(cfg, /set bootserve_server="\$net_default_server"/);
});

test('renderGrubMenu: the per-machine file first, which may name the entry; bootserve_net exported for the entries', () => {
  const cfg = renderGrubMenu(classifyEntries(files('a/vmlinuz', 'b/vmlinuz')), { ...BASE, timeoutMs: 0, defaultEntry: 'b' });
  const machine = cfg.indexOf('source "${bootserve_net}/${bootserve_machine}"');
  assert.ok(machine > 0 && machine < cfg.indexOf('menuentry'));
  assert.match(cfg, /set bootserve_machine="machines\/\$\{net_default_mac\}\.grub\.cfg"/);
  assert.ok(cfg.indexOf('export bootserve_net') > machine);
  assert.match(cfg, /set default='b'\nset timeout=-1\n/, 'menu-default by folder; no timeout waits');
  assert.match(cfg, /if \[ -n "\$bootserve_entry" \]; then set default="\$bootserve_entry"; set timeout=0; fi/);
});

test('renderGrubMenu: ISOs, EFI programs and scripts stay in boot.ipxe; odd names are skipped with a warning', () => {
  const warnings: string[] = [];
  const cfg = renderGrubMenu(classifyEntries(files('x.iso', 'tool.efi', 's.ipxe', 'odd dir/vmlinuz', 'ok/vmlinuz')), {
    ...BASE,
    defaultEntry: 'nope',
    warn: (m) => warnings.push(m),
  });
  assert.doesNotMatch(cfg, /x\.iso|tool\.efi|s\.ipxe|odd dir/);
  assert.match(cfg, /--id 'ok'/);
  assert.match(cfg, /--id local/);
  assert.ok(warnings.some((w) => /skipping "odd dir\/"/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => /menu default "nope" matches no Linux entry/.test(w)), warnings.join('\n'));
});

test('generateGrubMenu: reads the folder as the iPXE menu does (cmdline file, machines/ left out)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bootserve-grubmenu-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'linux'));
  mkdirSync(join(root, 'machines'));
  writeFileSync(join(root, 'linux/vmlinuz'), 'k');
  writeFileSync(join(root, 'linux/initrd.img'), 'i');
  writeFileSync(join(root, 'linux/cmdline'), '# a comment\nconsole=ttyS0\npanic=-1 # kept: GRUB quotes it\n');
  writeFileSync(join(root, 'machines/vmlinuz'), 'not an entry');
  const cfg = await generateGrubMenu(root, { ...BASE, dotfiles: false });
  assert.match(cfg, /linux "\$\{bootserve_net\}"\/linux\/vmlinuz 'console=ttyS0' 'panic=-1' '#' 'kept:' 'GRUB' 'quotes' 'it'/);
  assert.doesNotMatch(cfg, /machines\/vmlinuz/);
});

test('generateGrubMenu: each kernel only for the GRUB of its CPU (from its PE header), with a default per CPU', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bootserve-grubmenu-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const stub = (machine: number) => {
    const b = Buffer.alloc(512);
    b.write('MZ', 0, 'latin1');
    b.writeUInt32LE(0x80, 0x3c);
    b.write('PE\0\0', 0x80, 'latin1');
    b.writeUInt16LE(machine, 0x84);
    return b;
  };
  for (const [dir, kernel] of [
    ['amd64', stub(0x8664)],
    ['arm64', stub(0xaa64)],
    ['plain', Buffer.from('bzImage without a stub')],
  ] as const) {
    mkdirSync(join(root, dir));
    writeFileSync(join(root, dir, 'vmlinuz'), kernel);
  }
  const cfg = await generateGrubMenu(root, { ...BASE, dotfiles: false, defaultEntry: 'amd64' });
  assert.match(cfg, /if \[ "\$grub_cpu" = 'x86_64' \]; then\n  menuentry 'Linux: amd64\//);
  assert.match(cfg, /if \[ "\$grub_cpu" = 'arm64' \]; then\n  menuentry 'Linux: arm64\//);
  assert.match(cfg, /\n\nmenuentry 'Linux: plain\//, 'a kernel of unknown CPU is shown to every GRUB');
  assert.match(cfg, /set default='amd64'\nif \[ "\$grub_cpu" = 'arm64' \]; then set default='arm64'; fi\n/);
});
