// The generated /boot.ipxe: served when the directory has no boot.ipxe of its own.
//
// Three steps, only the first touching the disk:
//   scanTree        → every file and folder under the root, as {relPath, isFile}
//   classifyEntries → boot entries (Linux kernel+initrd per folder, ISOs, EFI programs, scripts)
//   renderBootMenu  → the iPXE script text
// The tree is scanned on every request, so adding a file to the folder adds a menu entry.
//
// A Linux entry loads its initrds under the names initrd, initrd2, initrd3... and passes
// `initrd=NAME` for each on the kernel command line: on UEFI that is the only way iPXE hands
// initrds to the kernel's EFI stub. BIOS kernels ignore those arguments.
import { lstat, open, readFile, readdir, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';

export interface BootMenuOptions {
  timeoutMs: number;
  defaultEntry?: string | undefined;
  dotfiles: boolean;
  warn?: (message: string) => void;
}

/** One file or folder under the root; relPath uses '/' whatever the platform. */
export interface ScannedPath { relPath: string; isFile: boolean }

export interface LinuxEntry {
  kind: 'linux';
  /** iPXE label: also what menu-default and a per-machine `set bootserve-entry` name. */
  label: string;
  /** The folder holding the kernel ('' for the root). */
  dir: string;
  kernel: string;
  /** In load order: microcode first, then the initrd, then extra cpio archives. */
  initrds: string[];
  /** Path of the folder's `cmdline` file, read by generateBootMenu before rendering. */
  cmdlinePath?: string | undefined;
  cmdline?: string | undefined;
  /**
   * Initrds that older UEFI iPXE builds would hand to the kernel at an offset that is
   * not a multiple of 4 although they are uncompressed cpio archives: the kernel would not
   * unpack them. Found by generateBootMenu; the script warns on the console.
   */
  misaligned?: string[] | undefined;
}

export interface FileEntry {
  kind: 'iso' | 'efi' | 'script';
  label: string;
  path: string;
}

export type BootEntry = LinuxEntry | FileEntry;

export interface RenderOptions {
  timeoutMs: number;
  defaultEntry?: string | undefined;
  warn?: ((message: string) => void) | undefined;
}

/** Every download is tried this many times, this many seconds apart. */
export const RETRY_ATTEMPTS = 5;
export const RETRY_PAUSE_SECONDS = 3;

// Bounds on the request-time scan, so a huge tree cannot make GET /boot.ipxe slow.
const MAX_DEPTH = 8;
const MAX_PATHS = 10_000;
const MAX_CMDLINE_BYTES = 4096;

// Where per-machine scripts live: never menu entries themselves.
const MACHINES_DIR = 'machines';

// Labels of the script's own sections contain '+', which entry labels never do (see slug),
// so no file name can collide with them.
const MENU = '+menu';
const LOCAL = '+local';
const SHELL = '+shell';
const FAILED = '+failed';

// ---------------------------------------------------------------------------------------------
// Scan

/**
 * Walk the tree under `root` (a real path). Skips dotfiles unless asked, the top-level
 * machines/ folder, names that are not valid UTF-8 (no URL could name them), and symlinks
 * whose target is outside the root or hidden: bootserve would refuse to serve those.
 */
export async function scanTree(root: string, dotfiles: boolean, warn: (message: string) => void): Promise<ScannedPath[]> {
  const out: ScannedPath[] = [];
  const prefix = root.endsWith(sep) ? root : root + sep;
  // Real paths of folders already walked: a symlink back up the tree must not loop.
  const seen = new Set<string>([root]);
  let truncated = false;

  async function walk(dirAbs: string, dirRel: string, depth: number): Promise<void> {
    let names: Buffer[];
    try {
      names = await readdir(dirAbs, { encoding: 'buffer' });
    } catch (err) {
      warn(`boot menu: cannot read folder ${JSON.stringify(dirRel || '.')}: ${(err as Error).message}`);
      return;
    }
    const decoded = names.map((raw) => ({ raw, name: raw.toString('utf8') }));
    decoded.sort((a, b) => compare(a.name, b.name));
    for (const { raw, name } of decoded) {
      if (out.length >= MAX_PATHS) {
        truncated = true;
        return;
      }
      if (!Buffer.from(name, 'utf8').equals(raw)) {
        warn(`boot menu: skipping ${JSON.stringify(dirRel + name)}: the name is not valid UTF-8`);
        continue;
      }
      if (name.startsWith('.') && !dotfiles) continue;
      if (dirRel === '' && name === MACHINES_DIR) continue;
      const relPath = dirRel + name;
      const abs = join(dirAbs, name);
      let info;
      try {
        info = await lstat(abs);
        if (info.isSymbolicLink()) {
          const real = await realpath(abs);
          const inside = real === root || real.startsWith(prefix);
          const hidden = inside && !dotfiles && real.slice(prefix.length).split(sep).some((n) => n.startsWith('.'));
          if (!inside || hidden) {
            warn(
              `boot menu: skipping symlink ${JSON.stringify(relPath)}: ` +
              `it leads ${inside ? 'to a hidden name' : 'outside the served folder'}`,
            );
            continue;
          }
          info = await stat(real);
          if (info.isDirectory()) {
            if (seen.has(real)) continue;
            seen.add(real);
          }
        }
      } catch (err) {
        // Dangling or looping symlink, or the file went away mid-scan.
        warn(`boot menu: skipping ${JSON.stringify(relPath)}: ${(err as Error).message}`);
        continue;
      }
      if (info.isFile()) {
        out.push({ relPath, isFile: true });
      } else if (info.isDirectory()) {
        out.push({ relPath, isFile: false });
        if (depth < MAX_DEPTH) await walk(abs, relPath + '/', depth + 1);
      }
    }
  }

  await walk(root, '', 1);
  if (truncated) warn(`boot menu: stopped scanning after ${MAX_PATHS} files and folders; later ones get no menu entry`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Classify

const KERNEL_NAME = /^(vmlinu[xz]|bzimage|linux$)|kernel/i;
const INITRD_NAME = /^(initrd|initramfs)/i;
// Early microcode (intel-ucode.img, amd-ucode.img): must be the first initrd, uncompressed.
const MICROCODE_NAME = /ucode/i;
// Extra archives loaded after the initrd, e.g. Debian's firmware.cpio.gz.
const CPIO_NAME = /\.cpio(\.(gz|xz|zst|lz4|lzma|lzo|bz2))?$/i;
// Checksums, signatures, notes, backups and packages sit beside kernels with kernel-like names.
const NOT_A_BOOT_FILE = /\.(sig|asc|gpg|sha\d*|md5|sums?|txt|md|cfg|conf|config|json|ya?ml|html?|log|old|bak|orig|deb|rpm|tar|tgz|zip)$/i;

function splitPath(relPath: string): { dir: string; name: string } {
  const slash = relPath.lastIndexOf('/');
  return { dir: relPath.slice(0, slash + 1), name: relPath.slice(slash + 1) };
}

function extension(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

/** The part of a kernel name after its kind, e.g. "-6.1.0-13-amd64" for "vmlinuz-6.1.0-13-amd64". */
function versionSuffix(name: string): string {
  return name.replace(/^(vmlinu[xz]|bzimage|initrd\.img|initrd|initramfs)/i, '').replace(/\.(img|gz|xz|zst|lz4|cpio)$/i, '');
}

/**
 * Turn a list of paths into boot entries. Pure. Order: Linux folders, ISOs, EFI programs,
 * iPXE scripts, each sorted by path. Labels are unique and made only of [A-Za-z0-9._/-].
 */
export function classifyEntries(paths: readonly ScannedPath[], warn: (message: string) => void = () => {}): BootEntry[] {
  const byDir = new Map<string, { kernels: string[]; initrds: string[]; microcode: string[]; archives: string[]; cmdline?: string }>();
  const files: { kind: FileEntry['kind']; path: string }[] = [];

  for (const { relPath, isFile } of paths) {
    if (!isFile) continue;
    const { dir, name } = splitPath(relPath);
    if (relPath.split('/')[0] === MACHINES_DIR && relPath.includes('/')) continue;
    const ext = extension(name);
    if (ext === 'iso') files.push({ kind: 'iso', path: relPath });
    else if (ext === 'efi') files.push({ kind: 'efi', path: relPath });
    else if (ext === 'ipxe') {
      // The top-level boot.ipxe is this very script, or replaces it: chaining it would loop.
      if (relPath !== 'boot.ipxe') files.push({ kind: 'script', path: relPath });
    } else if (!NOT_A_BOOT_FILE.test(name)) {
      const group = byDir.get(dir) ?? { kernels: [], initrds: [], microcode: [], archives: [] };
      byDir.set(dir, group);
      if (name === 'cmdline') group.cmdline = relPath;
      else if (INITRD_NAME.test(name)) group.initrds.push(name);
      else if (MICROCODE_NAME.test(name)) group.microcode.push(name);
      else if (CPIO_NAME.test(name)) group.archives.push(name);
      else if (KERNEL_NAME.test(name)) group.kernels.push(name);
    }
  }

  const linux: LinuxEntry[] = [];
  for (const [dir, group] of [...byDir].sort(([a], [b]) => compare(a, b))) {
    if (group.kernels.length === 0) continue;
    // Several kernels (a Debian-style /boot): offer the newest, by version-aware order.
    const kernels = [...group.kernels].sort(naturalCompare);
    const kernel = kernels[kernels.length - 1] as string;
    // vmlinuz-X goes with initrd.img-X or initramfs-X.img; else the newest initrd.
    const initrds = [...group.initrds].sort(naturalCompare);
    const suffix = versionSuffix(kernel);
    const initrd = initrds.find((n) => versionSuffix(n) === suffix) ?? initrds[initrds.length - 1];
    if (kernels.length > 1) warn(`boot menu: ${JSON.stringify(dir || '/')} holds several kernels; the menu offers ${kernel} only`);
    const loaded = [
      ...group.microcode.sort(naturalCompare),
      ...(initrd === undefined ? [] : [initrd]),
      ...group.archives.sort(naturalCompare),
    ];
    linux.push({
      kind: 'linux',
      label: '',
      dir,
      kernel: dir + kernel,
      initrds: loaded.map((name) => dir + name),
      cmdlinePath: group.cmdline,
    });
  }

  const order: FileEntry['kind'][] = ['iso', 'efi', 'script'];
  const others: FileEntry[] = order.flatMap((kind) =>
    files
      .filter((f) => f.kind === kind)
      .sort((a, b) => compare(a.path, b.path))
      .map((f) => ({ kind, label: '', path: f.path })),
  );

  const used = new Set<string>();
  const entries: BootEntry[] = [...linux, ...others];
  for (const entry of entries) {
    const base = entry.kind === 'linux' ? slug(entry.dir.replace(/\/$/, '')) || 'linux' : slug(entry.path);
    let label = base;
    for (let n = 2; used.has(label); n++) label = `${base}-${n}`;
    used.add(label);
    entry.label = label;
  }
  return entries;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const collator = new Intl.Collator('en', { numeric: true });
/** "vmlinuz-6.10" after "vmlinuz-6.9"; ties broken by plain order, so the result is stable. */
function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || compare(a, b);
}

/** A label iPXE takes as one plain token: no spaces, no '$', no quotes, no leading '-'. */
function slug(path: string): string {
  return path.replace(/[^A-Za-z0-9._/-]+/g, '_').replace(/^-/, '_');
}

// ---------------------------------------------------------------------------------------------
// Render

/**
 * A relative URL for a path under the root. Everything but unreserved characters is
 * percent-encoded, which keeps iPXE's own syntax ($ { } quotes # spaces) out of the script and
 * keeps a ':' in a file name from reading as a URL scheme. iPXE resolves it against the URI of
 * this script, so it works whatever address the machine reached bootserve on.
 */
export function encodeUrlPath(relPath: string): string {
  return relPath
    .split('/')
    .map((segment) =>
      [...Buffer.from(segment, 'utf8')]
        .map((byte) => {
          const c = String.fromCharCode(byte);
          return /[A-Za-z0-9._~-]/.test(c) ? c : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
        })
        .join(''),
    )
    .join('/');
}

/** Menu text iPXE prints as is: printable ASCII without characters its parser acts on. */
function displayText(text: string): string {
  return text.replace(/[^\x20-\x7e]|[${}"'\\#;&|]/g, '?');
}

/**
 * A kernel command line from a `cmdline` file: lines starting with '#' are comments, the rest
 * is joined on one line. Passed to iPXE verbatim otherwise, so ${...} settings still expand.
 */
export function parseCmdline(text: string): string {
  return text
    .split(/\r?\n/)
    .filter((line) => !line.trimStart().startsWith('#'))
    .join(' ')
    .replace(/[\x00-\x20\x7f]+/g, ' ')
    .trim();
}

function describe(entry: BootEntry): string {
  switch (entry.kind) {
    case 'linux': {
      const name = (p: string) => splitPath(p).name;
      const initrds = entry.initrds.length === 0 ? 'no initrd' : entry.initrds.map(name).join(' + ');
      return `Linux: ${entry.dir || '/'} (${name(entry.kernel)} + ${initrds})`;
    }
    case 'iso':
      return `ISO image: ${entry.path}`;
    case 'efi':
      return `EFI program: ${entry.path}`;
    case 'script':
      return `iPXE script: ${entry.path}`;
  }
}

/**
 * Lines that download with `command url args`, retried: on failure wait and try again, up to
 * RETRY_ATTEMPTS times, then give up to the failure section. A transfer bootserve aborted
 * (stalled client, read error) or that the network broke is so fetched anew.
 */
function retried(label: string, command: string, onSuccess: string): string[] {
  return [
    `set bootserve-try:int32 0`,
    `:${label}`,
    `inc bootserve-try`,
    `${command} && goto ${onSuccess} ||`,
    `iseq \${bootserve-try} ${RETRY_ATTEMPTS} && goto ${FAILED} ||`,
    `echo bootserve: try \${bootserve-try} of ${RETRY_ATTEMPTS} failed, trying again in ${RETRY_PAUSE_SECONDS} s`,
    `sleep ${RETRY_PAUSE_SECONDS} || goto ${MENU}`,
    `goto ${label}`,
  ];
}

function renderEntry(entry: BootEntry): string[] {
  const l = entry.label;
  const lines = [`:${l}`, `echo bootserve: ${displayText(describe(entry))}`];
  switch (entry.kind) {
    case 'linux': {
      // Each download's section is named after its image; the last one goes on to boot.
      const names = entry.initrds.map((_, i) => initrdImageName(i));
      const sections = [...names.map((name) => `${l}+${name}`), `${l}+boot`];
      lines.push(...retried(`${l}+kernel`, `kernel --name kernel ${encodeUrlPath(entry.kernel)}`, sections[0] as string));
      entry.initrds.forEach((path, i) => {
        const name = names[i] as string;
        lines.push(
          `:${sections[i]}`,
          ...retried(`${l}+${name}-fetch`, `initrd --name ${name} ${encodeUrlPath(path)}`, sections[i + 1] as string),
        );
      });
      lines.push(`:${l}+boot`);
      for (const path of entry.misaligned ?? []) {
        // Only UEFI iPXE passes initrds unpadded; the log says which files to pad.
        lines.push(
          `iseq \${platform} efi && echo bootserve: warning: ${displayText(path)} may not unpack ` +
          `(initrd sizes not padded to 4 bytes, see the bootserve log) ||`,
        );
      }
      // The command line gets a line of its own, so whatever the cmdline file holds cannot
      // upset the retry logic. initrd=NAME hands each initrd to an EFI-stub kernel.
      const args = [...names.map((name) => `initrd=${name}`), entry.cmdline ?? ''].filter(Boolean).join(' ');
      if (args) lines.push(`imgargs kernel ${args}`);
      lines.push(`boot || goto ${FAILED}`);
      break;
    }
    case 'iso':
      // sanboot reads the image with range requests as it goes; only opening it is retried.
      lines.push(...retried(`${l}+open`, `sanboot --no-describe ${encodeUrlPath(entry.path)}`, MENU));
      break;
    case 'efi':
    case 'script':
      // Fetch (retried) apart from running: a script that fails on its own is not run again.
      lines.push(
        ...retried(`${l}+fetch`, `imgfetch --name bootserve-image ${encodeUrlPath(entry.path)}`, `${l}+run`),
        `:${l}+run`,
        `imgexec --autofree bootserve-image || goto ${FAILED}`,
        `goto ${MENU}`,
      );
      break;
  }
  return lines;
}

/** The iPXE image name of the i-th initrd (from 0): initrd, initrd2, initrd3... */
function initrdImageName(i: number): string {
  return i === 0 ? 'initrd' : `initrd${i + 1}`;
}

/** Which label menu-default names: an entry's label or path, or "local"/"shell". */
function resolveDefault(entries: readonly BootEntry[], wanted: string | undefined, warn: (m: string) => void): string {
  const first = entries[0]?.label ?? LOCAL;
  if (wanted === undefined || wanted === '') return first;
  const norm = (p: string) => p.replace(/^\/+|\/+$/g, '');
  const w = norm(wanted);
  const hit = entries.find(
    (e) => e.label === wanted || norm(e.kind === 'linux' ? e.dir : e.path) === w || (e.kind === 'linux' && e.kernel === w),
  );
  if (hit) return hit.label;
  if (w === 'local') return LOCAL;
  if (w === 'shell') return SHELL;
  warn(`boot menu: menu default ${JSON.stringify(wanted)} matches no entry; using ${first === LOCAL ? 'local' : JSON.stringify(first)}`);
  return first;
}

/** The whole script. Pure. */
export function renderBootMenu(entries: readonly BootEntry[], options: RenderOptions): string {
  const warn = options.warn ?? (() => {});
  const def = resolveDefault(entries, options.defaultEntry, warn);
  const timeout = options.timeoutMs > 0 ? ` --timeout ${Math.round(options.timeoutMs)}` : '';
  const groups: [BootEntry['kind'], string][] = [
    ['linux', 'Linux'],
    ['iso', 'ISO images'],
    ['efi', 'EFI programs'],
    ['script', 'iPXE scripts'],
  ];

  const lines = [
    '#!ipxe',
    '# Generated by bootserve from the files in the served folder, anew on every request.',
    '# Put a boot.ipxe of your own in the folder to serve that instead.',
    '#',
    '# 1. machines/<mac>.ipxe (e.g. machines/52-54-00-12-34-56.ipxe) runs first if it exists. It',
    '#    may boot the machine itself, or `set bootserve-entry <label>` to boot an entry below.',
    `# 2. Otherwise the menu; ` +
    `its default is taken after ${options.timeoutMs > 0 ? `${options.timeoutMs / 1000} s` : 'a choice (no timeout)'}.`,
    `# Every download is tried up to ${RETRY_ATTEMPTS} times, ${RETRY_PAUSE_SECONDS} s apart: a transfer that broke`,
    '# (e.g. one bootserve aborted because it stalled) is fetched again.',
    '# URLs are relative: iPXE resolves them against the address this script came from.',
    '# Initrds are named (initrd, initrd2, ...) and passed as initrd=NAME, which UEFI needs.',
    '',
    'chain --autofree machines/${mac:hexhyp}.ipxe ||',
    'isset ${bootserve-entry} && goto ${bootserve-entry} ||',
    '',
    `:${MENU}`,
    'menu bootserve',
  ];
  for (const [kind, title] of groups) {
    const members = entries.filter((e) => e.kind === kind);
    if (members.length === 0) continue;
    lines.push(`item --gap ${title}`);
    for (const e of members) lines.push(`item ${e.label} ${displayText(describe(e))}`);
  }
  lines.push(
    'item --gap Other',
    `item ${LOCAL} Boot from local disk`,
    `item ${SHELL} iPXE shell`,
    `choose${timeout} --default ${def} bootserve-choice || goto ${SHELL}`,
    'goto ${bootserve-choice}',
  );
  for (const entry of entries) lines.push('', ...renderEntry(entry));
  lines.push(
    '',
    `:${LOCAL}`,
    'echo bootserve: booting from local disk',
    'exit',
    '',
    `:${SHELL}`,
    'echo bootserve: type exit to return to the menu',
    'shell ||',
    `goto ${MENU}`,
    '',
    `:${FAILED}`,
    // Drop whatever the failed attempt left loaded (a kernel without its initrd, say).
    'imgfree ||',
    'echo bootserve: boot failed; back to the menu in 10 s',
    'prompt --timeout 10000 Press any key for the menu ||',
    `goto ${MENU}`,
    '',
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Initrd alignment on UEFI
//
// The kernel unpacks its initrds as one buffer, skipping zero bytes between archives; an
// uncompressed cpio must start at an offset that is a multiple of 4, or the kernel stops with
// "invalid magic at start of compressed archive" (a compressed one may start anywhere). iPXE
// pads each initrd to 4 bytes on BIOS; on UEFI, its sources since 2023 (release 2.0) hand a
// Linux 5.7+ kernel all initrds padded through LoadFile2, which the kernel then prefers to
// initrd= arguments. Older UEFI builds (Debian 12's 2019 one among them) hand each initrd
// over by name only and the EFI stub concatenates them unpadded. iPXE has no command to pad
// an image, so the fix is in the files: zero bytes after an archive are skipped by the kernel.

const CPIO_MAGIC = /^0707(01|02|07)$/;

/** The first bytes of a file (fewer if it is shorter). */
async function readHead(path: string, length: number): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(length), 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/**
 * The initrds (after the first) that are uncompressed cpio archives and would start at an
 * offset that is not a multiple of 4 if the ones before were laid end to end; each is
 * warned about, naming the files to pad.
 */
async function findMisaligned(root: string, initrds: readonly string[], warn: (message: string) => void): Promise<string[]> {
  const misaligned: string[] = [];
  const unpadded: string[] = [];
  let offset = 0;
  try {
    for (const path of initrds) {
      const abs = join(root, ...path.split('/'));
      if (offset % 4 !== 0 && CPIO_MAGIC.test((await readHead(abs, 6)).toString('latin1'))) {
        misaligned.push(path);
        warn(
          `boot menu: ${path} is an uncompressed cpio that would start at byte ${offset} of the initrds, not a multiple of 4: ` +
            `older UEFI iPXE builds (Debian 12's 2019 one among them) pass initrds unpadded and the kernel would not unpack it. ` +
            `Pad ${unpadded.join(', ')} with zeros to a multiple of 4 bytes (e.g. truncate -s %4 FILE); the kernel skips the zeros`,
        );
      }
      const { size } = await stat(abs);
      if (size % 4 !== 0) unpadded.push(path);
      offset += size;
    }
  } catch (err) {
    // Gone or unreadable since the scan: its download will fail and say so.
    warn(`boot menu: cannot check the initrds of ${JSON.stringify(splitPath(initrds[0] as string).dir || '/')}: ${(err as Error).message}`);
  }
  return misaligned;
}

// ---------------------------------------------------------------------------------------------

/**
 * The boot entries of the served tree, as both menus see them: scanned, classified, each Linux
 * entry's cmdline file read. `syntax` names the menu whose quoting rules the warnings follow.
 */
export async function discoverEntries(
  root: string,
  options: { dotfiles: boolean; warn?: ((message: string) => void) | undefined },
  syntax: 'ipxe' | 'grub' = 'ipxe',
): Promise<BootEntry[]> {
  const warn = options.warn ?? (() => {});
  const entries = classifyEntries(await scanTree(root, options.dotfiles, warn), warn);
  for (const entry of entries) {
    if (entry.kind !== 'linux' || entry.cmdlinePath === undefined) continue;
    try {
      const text = await readFile(join(root, ...entry.cmdlinePath.split('/')), 'utf8');
      if (Buffer.byteLength(text) > MAX_CMDLINE_BYTES) warn(`boot menu: ${entry.cmdlinePath} is over ${MAX_CMDLINE_BYTES} bytes; ignored`);
      else {
        entry.cmdline = parseCmdline(text);
        // iPXE reads '#' as the start of a comment, and && || as command separators.
        if (syntax === 'ipxe' && /#|&&|\|\|/.test(entry.cmdline))
          warn(`boot menu: ${entry.cmdlinePath} holds '#', '&&' or '||', which iPXE does not pass to the kernel as written`);
      }
    } catch (err) {
      warn(`boot menu: cannot read ${entry.cmdlinePath}: ${(err as Error).message}`);
    }
  }
  return entries;
}

export async function generateBootMenu(root: string, options: BootMenuOptions): Promise<string> {
  const warn = options.warn ?? (() => {});
  const entries = await discoverEntries(root, options);
  for (const entry of entries) {
    if (entry.kind === 'linux' && entry.initrds.length > 1) entry.misaligned = await findMisaligned(root, entry.initrds, warn);
  }
  return renderBootMenu(entries, { timeoutMs: options.timeoutMs, defaultEntry: options.defaultEntry, warn });
}
