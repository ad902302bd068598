import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  RETRY_ATTEMPTS,
  classifyEntries,
  encodeUrlPath,
  generateBootMenu,
  parseCmdline,
  renderBootMenu,
  type BootEntry,
  type LinuxEntry,
  type ScannedPath,
} from '../../lib/netboot/bootmenu.js';

const files = (...paths: string[]): ScannedPath[] => paths.map((relPath) => ({ relPath, isFile: !relPath.endsWith('/') }));

// ---------------------------------------------------------------------------------------------
// A small iPXE script interpreter: enough of iPXE's semantics (labels, goto, settings,
// && / || chains, a failing line ending the script) to run the generated script with
// downloads that fail on demand.

interface SimOptions {
  /** Whether the download `command url` succeeds; called once per attempt. */
  fetch: (command: string, url: string) => boolean;
  /** What `choose` picks (default: its --default); undefined ends the run there. */
  choose?: (defaultLabel: string, call: number) => string | undefined;
}

interface SimResult {
  trace: string[];
  end: string;
}

function simulate(script: string, options: SimOptions): SimResult {
  const lines = script.split('\n');
  const labels = new Map<string, number>();
  lines.forEach((line, i) => {
    if (line.startsWith(':')) {
      assert.ok(!labels.has(line.slice(1)), `duplicate label ${line}`);
      labels.set(line.slice(1), i);
    }
  });
  const settings = new Map<string, string>();
  const trace: string[] = [];
  let chooses = 0;
  let pc = 0;
  const expand = (text: string) =>
    text.replace(/\$\{([^}]+)\}/g, (_, name: string) => (name === 'mac:hexhyp' ? '52-54-00-12-34-56' : settings.get(name) ?? ''));

  type Flow = { rc: boolean; jump?: number; end?: string };
  const run = (argv: string[]): Flow => {
    const [cmd = '', ...args] = argv;
    const plain = args.filter((a) => !a.startsWith('--'));
    const gotoLabel = (label: string): Flow => {
      const at = labels.get(label);
      return at === undefined ? { rc: false } : { rc: true, jump: at };
    };
    switch (cmd) {
      case '':
        return { rc: true };
      case 'echo':
      case 'menu':
      case 'item':
      case 'imgfree':
      case 'imgargs':
        if (cmd === 'imgargs') trace.push(`imgargs ${args.join(' ')}`);
        return { rc: true };
      case 'set': {
        const name = (args[0] ?? '').replace(/:int32$/, '');
        settings.set(name, args.slice(1).join(' '));
        return { rc: true };
      }
      case 'inc':
        settings.set(args[0] ?? '', String(Number(settings.get(args[0] ?? '') ?? '0') + 1));
        return { rc: true };
      case 'iseq':
        return { rc: args[0] === args[1] };
      case 'isset':
        return { rc: (args[0] ?? '') !== '' };
      case 'goto':
        return gotoLabel(args[0] ?? '');
      case 'sleep':
      case 'prompt':
        trace.push(cmd);
        return { rc: cmd === 'sleep' };
      case 'chain':
      case 'kernel':
      case 'initrd':
      case 'imgfetch':
      case 'sanboot': {
        const url = plain[plain.length - 1] ?? '';
        const ok = options.fetch(cmd, url);
        trace.push(`${cmd} ${url} ${ok ? 'ok' : 'failed'}`);
        if (ok && cmd === 'sanboot') return { rc: true, end: `sanboot ${url}` };
        return { rc: ok };
      }
      case 'imgexec':
        trace.push('imgexec');
        return { rc: true };
      case 'boot':
        return { rc: true, end: 'boot' };
      case 'exit':
        return { rc: true, end: 'exit' };
      case 'shell':
        return { rc: true, end: 'shell' };
      case 'choose': {
        const def = args[args.indexOf('--default') + 1] ?? '';
        const picked = options.choose ? options.choose(def, chooses++) : chooses++ === 0 ? def : undefined;
        if (picked === undefined) return { rc: true, end: 'menu again' };
        trace.push(`choose ${picked}`);
        settings.set(args[args.length - 1] ?? '', picked);
        return { rc: true };
      }
      default:
        throw new Error(`simulator does not know ${cmd}`);
    }
  };

  for (let steps = 0; steps < 10_000; steps++) {
    if (pc >= lines.length) return { trace, end: 'end of script' };
    const line = lines[pc++] ?? '';
    if (line.startsWith('#') || line.startsWith(':') || line.trim() === '') continue;
    // Split into commands and the && / || between them, as iPXE does.
    const tokens = expand(line).split(/\s+/).filter(Boolean);
    const commands: string[][] = [[]];
    const ops: string[] = [];
    for (const tok of tokens) {
      if (tok === '&&' || tok === '||') {
        ops.push(tok);
        commands.push([]);
      } else commands[commands.length - 1]?.push(tok);
    }
    let rc = true;
    let flow: Flow | undefined;
    for (let i = 0; i < commands.length; i++) {
      const op = ops[i - 1];
      if (i > 0 && ((op === '&&' && !rc) || (op === '||' && rc))) continue;
      flow = run(commands[i] ?? []);
      rc = flow.rc;
      if (flow.end) return { trace, end: flow.end };
      if (flow.jump !== undefined) break;
    }
    if (flow?.jump !== undefined) pc = flow.jump + 1;
    else if (!rc) return { trace, end: `script failed at line ${pc}: ${line}` };
  }
  return { trace, end: 'too many steps' };
}

// ---------------------------------------------------------------------------------------------

describe('classifyEntries', () => {
  test('a folder with a kernel, an initrd and a cmdline makes one Linux entry', () => {
    const entries = classifyEntries(files('debian/', 'debian/vmlinuz', 'debian/initrd.img', 'debian/cmdline', 'debian/README.txt'));
    assert.deepEqual(entries, [
      {
        kind: 'linux',
        label: 'debian',
        dir: 'debian/',
        kernel: 'debian/vmlinuz',
        initrds: ['debian/initrd.img'],
        cmdlinePath: 'debian/cmdline',
      },
    ]);
  });

  test('kernel and initrd name variants; a kernel alone still boots; an initrd alone does not', () => {
    const entries = classifyEntries(files('a/bzImage', 'a/initramfs.cpio.gz', 'b/my-kernel', 'c/initrd.img', 'd/linux', 'd/initrd.gz'));
    assert.deepEqual(
      entries.map((e) => (e.kind === 'linux' ? [e.label, e.kernel, e.initrds] : [])),
      [
        ['a', 'a/bzImage', ['a/initramfs.cpio.gz']],
        ['b', 'b/my-kernel', []],
        ['d', 'd/linux', ['d/initrd.gz']],
      ],
    );
  });

  test('a Debian-style /boot: the newest kernel, paired with its own initrd; backups and signatures ignored', () => {
    const warnings: string[] = [];
    const entries = classifyEntries(
      files(
        'boot/vmlinuz-6.1.0-9-amd64',
        'boot/vmlinuz-6.1.0-10-amd64',
        'boot/initrd.img-6.1.0-10-amd64',
        'boot/initrd.img-6.1.0-9-amd64',
        'boot/vmlinuz.old',
        'boot/vmlinuz-6.1.0-10-amd64.sig',
        'boot/linux-kernel-6.2.deb',
        'boot/config-6.1.0-10-amd64',
      ),
      (m) => warnings.push(m),
    );
    assert.equal(entries.length, 1);
    const linux = entries[0] as LinuxEntry;
    assert.equal(linux.kernel, 'boot/vmlinuz-6.1.0-10-amd64');
    assert.deepEqual(linux.initrds, ['boot/initrd.img-6.1.0-10-amd64']);
    assert.equal(linux.cmdlinePath, undefined);
    assert.match(warnings.join('\n'), /several kernels/);
  });

  test('several initrds: microcode first, then the initrd, then extra cpio archives, each in name order', () => {
    const entries = classifyEntries(
      files(
        'd/vmlinuz',
        'd/initrd.gz',
        'd/firmware.cpio.gz',
        'd/amd-ucode.img',
        'd/intel-ucode.img',
        'd/kernel-modules.cpio',
        'd/extra.cpio.zst',
        'd/notes.cpio.txt',
        'e/amd-ucode.img',
        'e/bzImage',
      ),
    );
    assert.deepEqual(
      entries.map((e) => (e.kind === 'linux' ? [e.kernel, e.initrds] : [])),
      [
        [
          'd/vmlinuz',
          ['d/amd-ucode.img', 'd/intel-ucode.img', 'd/initrd.gz', 'd/extra.cpio.zst', 'd/firmware.cpio.gz', 'd/kernel-modules.cpio'],
        ],
        ['e/bzImage', ['e/amd-ucode.img']],
      ],
    );
  });

  test('ISOs, EFI programs and iPXE scripts, in that order after Linux, each sorted by path', () => {
    const entries = classifyEntries(
      files('z.iso', 'tools/b.EFI', 'a.iso', 'menu.ipxe', 'k/vmlinuz', 'tools/a.efi', 'boot.ipxe', 'sub/boot.ipxe'),
    );
    assert.deepEqual(
      entries.map((e) => `${e.kind}:${e.kind === 'linux' ? e.dir : e.path}`),
      ['linux:k/', 'iso:a.iso', 'iso:z.iso', 'efi:tools/a.efi', 'efi:tools/b.EFI', 'script:menu.ipxe', 'script:sub/boot.ipxe'],
    );
  });

  test('machines/ holds per-machine scripts, not menu entries', () => {
    assert.deepEqual(classifyEntries(files('machines/', 'machines/52-54-00-12-34-56.ipxe', 'machines/vmlinuz', 'machines/x.iso')), []);
    assert.equal(classifyEntries(files('lab/machines/x.iso')).length, 1);
  });

  test('labels are unique plain tokens', () => {
    const entries = classifyEntries(files('vmlinuz', 'linux/vmlinuz', 'my $odd {dir}/vmlinuz', '-x.iso', 'a b.iso', 'a_b.iso'));
    const labels = entries.map((e) => e.label);
    assert.deepEqual(labels, ['linux', 'linux-2', 'my_odd_dir_', '_x.iso', 'a_b.iso', 'a_b.iso-2']);
    for (const l of labels) assert.match(l, /^[A-Za-z0-9._/][A-Za-z0-9._/-]*$/);
  });
});

describe('encodeUrlPath and parseCmdline', () => {
  test('everything but unreserved characters is percent-encoded, per segment', () => {
    assert.equal(encodeUrlPath('debian/12/vmlinuz-6.1_x~y'), 'debian/12/vmlinuz-6.1_x~y');
    assert.equal(encodeUrlPath(`my iso $1 {x} "q" 'q' #;.iso`), 'my%20iso%20%241%20%7Bx%7D%20%22q%22%20%27q%27%20%23%3B.iso');
    assert.equal(encodeUrlPath('café/ü.iso'), 'caf%C3%A9/%C3%BC.iso');
    // A ':' must not read as a URL scheme, a '%' not as an escape.
    assert.equal(encodeUrlPath('c:d/100%.iso'), 'c%3Ad/100%25.iso');
  });

  test('cmdline files: comment lines dropped, lines joined, whitespace collapsed', () => {
    assert.equal(parseCmdline('# kernel arguments\nconsole=ttyS0\tquiet\r\n\n  ip=dhcp  \n  # more\n'), 'console=ttyS0 quiet ip=dhcp');
    assert.equal(parseCmdline(''), '');
  });
});

describe('renderBootMenu', () => {
  const sample = (): BootEntry[] => {
    const entries = classifyEntries(
      files('debian/vmlinuz', 'debian/initrd.img', 'debian/cmdline', 'iso/x y.iso', 'efi/shell.efi', 'more.ipxe', 'alone/vmlinuz'),
    );
    (entries[1] as LinuxEntry).cmdline = 'console=ttyS0 ip=dhcp';
    return entries;
  };

  test('per-machine script first, then a menu with a timeout and a default', () => {
    const script = renderBootMenu(sample(), { timeoutMs: 7000 });
    const lines = script.split('\n');
    assert.equal(lines[0], '#!ipxe');
    assert.ok(lines.includes('chain --autofree machines/${mac:hexhyp}.ipxe ||'));
    assert.ok(lines.indexOf('chain --autofree machines/${mac:hexhyp}.ipxe ||') < lines.indexOf('menu bootserve'));
    assert.ok(lines.includes('choose --timeout 7000 --default alone bootserve-choice || goto +shell'));
    for (const item of [
      'item alone Linux: alone/ (vmlinuz + no initrd)',
      'item debian Linux: debian/ (vmlinuz + initrd.img)',
      'item iso/x_y.iso ISO image: iso/x y.iso',
      'item efi/shell.efi EFI program: efi/shell.efi',
      'item more.ipxe iPXE script: more.ipxe',
      'item +local Boot from local disk',
      'item +shell iPXE shell',
    ]) {
      assert.ok(lines.includes(item), `missing: ${item}`);
    }
    assert.ok(lines.includes('sanboot --no-describe iso/x%20y.iso && goto +menu ||'));
    assert.ok(lines.includes('imgargs kernel initrd=initrd console=ttyS0 ip=dhcp'));
    assert.ok(lines.includes('exit'));
    assert.ok(script.endsWith('\n'));
  });

  test('every goto has its label, and no line is outside printable ASCII', () => {
    const script = renderBootMenu(sample(), { timeoutMs: 1000 });
    const labels = new Set(script.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1)));
    for (const m of script.matchAll(/goto ([^\s$]+)/g)) assert.ok(labels.has(m[1] ?? ''), `no label for goto ${m[1]}`);
    for (const line of script.split('\n')) assert.match(line, /^[\x20-\x7e]*$/);
    // The only settings the script expands are its own.
    for (const m of script.matchAll(/\$\{([^}]*)\}/g))
      assert.ok(['mac:hexhyp', 'bootserve-entry', 'bootserve-choice', 'bootserve-try', 'platform'].includes(m[1] ?? ''), m[0]);
  });

  test('timeout 0 waits for a choice', () => {
    assert.match(renderBootMenu(sample(), { timeoutMs: 0 }), /^choose --default alone bootserve-choice/m);
  });

  test('menu default: by label, by path, local, shell; an unknown one warns and falls back', () => {
    const pick = (defaultEntry: string) => {
      const warnings: string[] = [];
      const script = renderBootMenu(sample(), { timeoutMs: 1000, defaultEntry, warn: (m) => warnings.push(m) });
      return [/--default (\S+)/.exec(script)?.[1], warnings.length];
    };
    assert.deepEqual(pick('debian'), ['debian', 0]);
    assert.deepEqual(pick('/debian/'), ['debian', 0]);
    assert.deepEqual(pick('debian/vmlinuz'), ['debian', 0]);
    assert.deepEqual(pick('iso/x y.iso'), ['iso/x_y.iso', 0]);
    assert.deepEqual(pick('iso/x_y.iso'), ['iso/x_y.iso', 0]);
    assert.deepEqual(pick('local'), ['+local', 0]);
    assert.deepEqual(pick('shell'), ['+shell', 0]);
    assert.deepEqual(pick('nope'), ['alone', 1]);
    assert.deepEqual(pick(''), ['alone', 0]);
  });

  test('with nothing to boot: local disk by default, and the shell', () => {
    const warnings: string[] = [];
    const script = renderBootMenu([], { timeoutMs: 5000, defaultEntry: 'gone', warn: (m) => warnings.push(m) });
    assert.match(script, /^choose --timeout 5000 --default \+local bootserve-choice/m);
    assert.equal(script.match(/^item /gm)?.length, 3);
    assert.match(warnings[0] ?? '', /matches no entry; using local/);
    assert.equal(simulate(script, { fetch: () => false }).end, 'exit');
  });
});

describe('the generated script, run', () => {
  const entries = (): BootEntry[] => {
    const e = classifyEntries(files('linux/vmlinuz', 'linux/initrd.img', 'x.iso', 'tool.efi', 'extra.ipxe'));
    (e[0] as LinuxEntry).cmdline = 'console=ttyS0';
    return e;
  };
  const script = () => renderBootMenu(entries(), { timeoutMs: 1000 });

  test('no per-machine script: the default entry boots, kernel and initrd fetched once', () => {
    const r = simulate(script(), { fetch: (cmd) => cmd !== 'chain' });
    assert.equal(r.end, 'boot');
    assert.deepEqual(r.trace, [
      'chain machines/52-54-00-12-34-56.ipxe failed',
      'choose linux',
      'kernel linux/vmlinuz ok',
      'initrd linux/initrd.img ok',
      'imgargs kernel initrd=initrd console=ttyS0',
    ]);
  });

  test('a failed download is tried again after a pause, separately for kernel and initrd', () => {
    const failures = new Map([['kernel', 2], ['initrd', 1]]);
    const r = simulate(script(), {
      fetch: (cmd) => {
        const left = failures.get(cmd) ?? 0;
        failures.set(cmd, left - 1);
        return cmd !== 'chain' && left <= 0;
      },
    });
    assert.equal(r.end, 'boot');
    assert.deepEqual(r.trace.filter((l) => /^(kernel|initrd|sleep)/.test(l)), [
      'kernel linux/vmlinuz failed',
      'sleep',
      'kernel linux/vmlinuz failed',
      'sleep',
      'kernel linux/vmlinuz ok',
      'initrd linux/initrd.img failed',
      'sleep',
      'initrd linux/initrd.img ok',
    ]);
  });

  test(`the retries are bounded: after ${RETRY_ATTEMPTS} failures, back to the menu`, () => {
    for (const [label, cmd] of [['linux', 'kernel'], ['x.iso', 'sanboot'], ['tool.efi', 'imgfetch'], ['extra.ipxe', 'imgfetch']]) {
      const r = simulate(script(), { fetch: (c) => c !== cmd && c !== 'chain', choose: (_def, n) => (n === 0 ? label : undefined) });
      assert.equal(r.end, 'menu again', label);
      assert.equal(r.trace.filter((l) => l.startsWith(`${cmd} `)).length, RETRY_ATTEMPTS, label);
      assert.equal(r.trace.filter((l) => l === 'sleep').length, RETRY_ATTEMPTS - 1, label);
      assert.equal(r.trace[r.trace.length - 1], 'prompt', label);
    }
  });

  test('every menu item leads somewhere', () => {
    const ends: Record<string, string> = {};
    for (const label of ['linux', 'x.iso', 'tool.efi', 'extra.ipxe', '+local', '+shell']) {
      ends[label] = simulate(script(), { fetch: (c) => c !== 'chain', choose: (_d, n) => (n === 0 ? label : undefined) }).end;
    }
    assert.deepEqual(ends, {
      linux: 'boot',
      'x.iso': 'sanboot x.iso',
      'tool.efi': 'menu again',
      'extra.ipxe': 'menu again',
      '+local': 'exit',
      '+shell': 'shell',
    });
  });

  test('several initrds: each fetched under its own name with its own retries, each passed as initrd=NAME', () => {
    const e = classifyEntries(files('linux/vmlinuz', 'linux/intel-ucode.img', 'linux/initrd.img', 'linux/firmware.cpio.gz'));
    const failures = new Map([['linux/initrd.img', 1], ['linux/firmware.cpio.gz', 2]]);
    const r = simulate(renderBootMenu(e, { timeoutMs: 1000 }), {
      fetch: (cmd, url) => {
        const left = failures.get(url) ?? 0;
        failures.set(url, left - 1);
        return cmd !== 'chain' && left <= 0;
      },
    });
    assert.equal(r.end, 'boot');
    assert.deepEqual(r.trace.filter((l) => /^(kernel|initrd|sleep|imgargs)/.test(l)), [
      'kernel linux/vmlinuz ok',
      'initrd linux/intel-ucode.img ok',
      'initrd linux/initrd.img failed',
      'sleep',
      'initrd linux/initrd.img ok',
      'initrd linux/firmware.cpio.gz failed',
      'sleep',
      'initrd linux/firmware.cpio.gz failed',
      'sleep',
      'initrd linux/firmware.cpio.gz ok',
      'imgargs kernel initrd=initrd initrd=initrd2 initrd=initrd3',
    ]);
    const script = renderBootMenu(e, { timeoutMs: 1000 });
    assert.match(script, /^initrd --name initrd linux\/intel-ucode.img && goto linux\+initrd2 \|\|$/m);
    assert.match(script, /^initrd --name initrd2 linux\/initrd.img && goto linux\+initrd3 \|\|$/m);
    assert.match(script, /^initrd --name initrd3 linux\/firmware.cpio.gz && goto linux\+boot \|\|$/m);
    assert.match(script, /^item linux Linux: linux\/ \(vmlinuz \+ intel-ucode.img \+ initrd.img \+ firmware.cpio.gz\)$/m);
    // Never an absolute URL, and never one built from ${next-server} (the router's, on a LAN with its own DHCP server).
    assert.doesNotMatch(script, /next-server|http:\/\//);
  });

  test('a per-machine script can pick an entry with `set bootserve-entry`', () => {
    // Simulate the chained script's effect: it succeeds and leaves the setting behind.
    const s = script().replace('chain --autofree machines/${mac:hexhyp}.ipxe ||', 'set bootserve-entry x.iso');
    const r = simulate(s, { fetch: () => true, choose: () => undefined });
    assert.equal(r.end, 'sanboot x.iso');
  });
});

// ---------------------------------------------------------------------------------------------

describe('generateBootMenu on a folder', () => {
  const roots: string[] = [];
  after(() => {
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });
  const folder = (tree: Record<string, string | Buffer>): string => {
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'bootserve-menu-')));
    roots.push(root);
    for (const [name, body] of Object.entries(tree)) {
      mkdirSync(dirname(join(root, name)), { recursive: true });
      if (!name.endsWith('/')) writeFileSync(join(root, name), body);
    }
    return root;
  };
  const generate = async (root: string, extra: { dotfiles?: boolean; defaultEntry?: string } = {}) => {
    const warnings: string[] = [];
    const script = await generateBootMenu(root, { timeoutMs: 3000, dotfiles: false, ...extra, warn: (m) => warnings.push(m) });
    return { script, warnings, items: script.split('\n').filter((l) => l.startsWith('item ') && !l.startsWith('item --gap')) };
  };

  test('kernel + initrd + cmdline, ISO, EFI and iPXE script', async () => {
    const root = folder({
      'debian/vmlinuz': 'k',
      'debian/initrd.img': 'i',
      'debian/cmdline': '# serial console\nconsole=ttyS0,115200\nip=dhcp\n',
      'isos/rescue.iso': 'iso',
      'tools/memtest.efi': 'efi',
      'other.ipxe': '#!ipxe\n',
    });
    const { script, warnings, items } = await generate(root);
    assert.deepEqual(warnings, []);
    assert.deepEqual(items, [
      'item debian Linux: debian/ (vmlinuz + initrd.img)',
      'item isos/rescue.iso ISO image: isos/rescue.iso',
      'item tools/memtest.efi EFI program: tools/memtest.efi',
      'item other.ipxe iPXE script: other.ipxe',
      'item +local Boot from local disk',
      'item +shell iPXE shell',
    ]);
    assert.match(script, /^kernel --name kernel debian\/vmlinuz && goto debian\+initrd \|\|$/m);
    assert.match(script, /^initrd --name initrd debian\/initrd.img && goto debian\+boot \|\|$/m);
    assert.match(script, /^imgargs kernel initrd=initrd console=ttyS0,115200 ip=dhcp$/m);
    assert.match(script, /^sanboot --no-describe isos\/rescue.iso && goto \+menu \|\|$/m);
    assert.match(script, /^imgfetch --name bootserve-image tools\/memtest.efi && goto tools\/memtest.efi\+run \|\|$/m);
    assert.match(script, /^choose --timeout 3000 --default debian bootserve-choice/m);
  });

  test('names iPXE would misread are percent-encoded in URLs and neutralised in menu text', async () => {
    const root = folder({ 'my $iso {1} "x" \'y\' #2;.iso': 'a', 'café/vmlinuz': 'k', 'café/initrd.img': 'i' });
    const { script, items } = await generate(root);
    assert.ok(script.includes('sanboot --no-describe my%20%24iso%20%7B1%7D%20%22x%22%20%27y%27%20%232%3B.iso && goto +menu ||'));
    assert.ok(script.includes('kernel --name kernel caf%C3%A9/vmlinuz && goto'));
    assert.ok(items.includes('item caf_ Linux: caf?/ (vmlinuz + initrd.img)'), items.join('\n'));
    assert.ok(items.includes('item my_iso_1_x_y_2_.iso ISO image: my ?iso ?1? ?x? ?y? ?2?.iso'), items.join('\n'));
    for (const line of script.split('\n')) assert.match(line, /^[\x20-\x7e]*$/);
  });

  test('a name that is not valid UTF-8 is skipped with a warning', async () => {
    const root = folder({ 'good.iso': 'a' });
    writeFileSync(Buffer.from(join(root, 'bad-\xff.iso'), 'latin1'), 'b');
    const { items, warnings } = await generate(root);
    assert.deepEqual(items.slice(0, -2), ['item good.iso ISO image: good.iso']);
    assert.match(warnings.join('\n'), /not valid UTF-8/);
  });

  test('dotfiles and dot-folders only with dotfiles', async () => {
    const root = folder({ '.hidden/vmlinuz': 'k', '.secret.iso': 'a', 'ok.iso': 'b' });
    assert.deepEqual((await generate(root)).items.slice(0, -2), ['item ok.iso ISO image: ok.iso']);
    assert.deepEqual((await generate(root, { dotfiles: true })).items.slice(0, -2), [
      'item .hidden Linux: .hidden/ (vmlinuz + no initrd)',
      'item .secret.iso ISO image: .secret.iso',
      'item ok.iso ISO image: ok.iso',
    ]);
  });

  test('machines/ and the root boot.ipxe are not entries', async () => {
    const root = folder({ 'machines/52-54-00-12-34-56.ipxe': '#!ipxe\n', 'machines/x.iso': 'a', 'boot.ipxe': '#!ipxe\n', 'a.iso': 'b' });
    assert.deepEqual((await generate(root)).items.slice(0, -2), ['item a.iso ISO image: a.iso']);
  });

  test('symlinks: inside the root followed, escaping or dangling ones skipped, loops cut', async () => {
    const outside = folder({ 'vmlinuz': 'k', 'initrd.img': 'i', 'secret.iso': 's' });
    const root = folder({ 'real/vmlinuz': 'k', 'real/initrd.img': 'i', '.hidden.iso': 'h' });
    symlinkSync(outside, join(root, 'escape'));
    symlinkSync(join(outside, 'secret.iso'), join(root, 'leak.iso'));
    symlinkSync(join(root, '.hidden.iso'), join(root, 'shown.iso'));
    symlinkSync(join(root, 'nowhere'), join(root, 'dangling.iso'));
    symlinkSync('real', join(root, 'alias'));
    symlinkSync('..', join(root, 'real/up'));
    const { items, warnings } = await generate(root);
    assert.deepEqual(items.slice(0, -2), [
      'item alias Linux: alias/ (vmlinuz + initrd.img)',
      'item real Linux: real/ (vmlinuz + initrd.img)',
    ]);
    const text = warnings.join('\n');
    for (const name of ['escape', 'leak.iso', 'shown.iso', 'dangling.iso'])
      assert.ok(text.includes(`"${name}"`), `no warning for ${name}:\n${text}`);
  });

  test('an empty folder: local disk and shell only', async () => {
    const { items, script } = await generate(folder({}));
    assert.deepEqual(items, ['item +local Boot from local disk', 'item +shell iPXE shell']);
    assert.match(script, /--default \+local /);
  });

  test('initrds the 2019 UEFI iPXE would misalign: an uncompressed cpio after an odd size ' +
  'is warned about, with the files to pad', async () => {
    const cpio = '070701' + '0'.repeat(102);
    const root = folder({
      // initrd.img is 5 bytes: extra.cpio would start at 5, firmware.cpio.gz may start anywhere.
      'bad/vmlinuz': 'k',
      'bad/initrd.img': 'gzip!',
      'bad/extra.cpio': cpio,
      'bad/firmware.cpio.gz': '\x1f\x8b...',
      // The same, padded to 8 bytes: nothing to say.
      'good/vmlinuz': 'k',
      'good/initrd.img': 'gzip!\0\0\0',
      'good/extra.cpio': cpio,
      // Compressed archives only: nothing to say either.
      'gz/vmlinuz': 'k',
      'gz/initrd.img': 'gzip!',
      'gz/firmware.cpio.gz': '\x1f\x8b...',
    });
    const { script, warnings } = await generate(root);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(
      warnings[0] ?? '',
      new RegExp(
        /^boot menu: bad\/extra.cpio is an uncompressed cpio that would start at byte 5 of the initrds,/.source +
        / not a multiple of 4: .*Pad bad\/initrd.img with zeros .*truncate -s %4/.source,
      ),
    );
    const warned = script.split('\n').filter((l) => l.includes('warning'));
    assert.deepEqual(warned, [
      'iseq ${platform} efi && echo bootserve: warning: bad/extra.cpio may not unpack ' +
      '(initrd sizes not padded to 4 bytes, see the bootserve log) ||',
    ]);
    assert.match(script, /^imgargs kernel initrd=initrd initrd=initrd2 initrd=initrd3$/m);
    // On BIOS (platform pcbios) the line says nothing and the boot goes on.
    const r = simulate(script, { fetch: (cmd) => cmd !== 'chain', choose: (_d, n) => (n === 0 ? 'bad' : undefined) });
    assert.equal(r.end, 'boot');
  });

  test('cmdline files that are too big, or hold what iPXE would misread, are reported', async () => {
    const root = folder({ 'a/vmlinuz': 'k', 'a/cmdline': 'x'.repeat(5000), 'b/vmlinuz': 'k', 'b/cmdline': 'quiet # no' });
    const { script, warnings } = await generate(root);
    assert.match(warnings.join('\n'), /a\/cmdline is over 4096 bytes/);
    assert.match(warnings.join('\n'), /b\/cmdline holds '#'/);
    assert.doesNotMatch(script, /xxxx/);
  });
});
