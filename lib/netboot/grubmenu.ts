// The generated grub/grub.cfg: the GRUB twin of the generated boot.ipxe, for the Secure Boot
// path (shim → signed GRUB → signed kernel). Same discovery as the iPXE menu (bootmenu.ts:
// Linux folders with their kernel, initrds in load order with microcode first, `cmdline`); what
// GRUB under Secure Boot cannot boot from the network (ISO images, unsigned EFI programs, iPXE
// scripts) is left to boot.ipxe.
//
// GRUB's prefix is fixed at (tftp,SERVER)/grub or (http,SERVER:PORT)/grub, so this file is asked
// for as grub/grub.cfg (after grub/<platform>/grub.cfg, which bootserve does not have). It:
//   1. finds the server from the device GRUB was loaded from ($root), else $net_default_server;
//   2. loads kernels and initrds the way GRUB itself came, ($root): TFTP after PXE, HTTP after
//      HTTP Boot. Measured through bootserve (test/e2e/secureboot.test.ts), GRUB's lockstep TFTP
//      was as fast as or faster than its own http on the LAN, and GRUB 2.12 opens every initrd
//      at `initrd` but reads it only when the kernel's EFI stub asks: an HTTP response then sits
//      unread for seconds (more for each initrd before it) and may meet the stall guard, while a
//      TFTP transfer waits for its ACK up to --tftp-timeout. ${bootserve_http} (where this GRUB
//      has http) and ${bootserve_tftp} are there for a per-machine file to choose;
//   3. runs machines/<mac>.grub.cfg first when it exists (it may set bootserve_entry, or
//      bootserve_net);
//   4. shows the menu, each kernel only to the GRUB of its CPU (read from the EFI stub's PE
//      header), so linux-x64/ and linux-arm64/ side by side just work; every download is tried
//      RETRY_ATTEMPTS times, RETRY_PAUSE_SECONDS apart,
//      so a transfer bootserve cut (stalled) or the network broke is fetched again.
// Nothing is insmod'ed: under Secure Boot GRUB refuses modules from the server; everything used
// (regexp, test, sleep, linux, http, tftp) is built into the distributions' signed network images.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { peMachine } from './authenticode.js';
import { discoverEntries, RETRY_ATTEMPTS, RETRY_PAUSE_SECONDS, type BootEntry, type LinuxEntry } from './bootmenu.js';

export interface GrubMenuOptions {
  timeoutMs: number;
  defaultEntry?: string | undefined;
  /** The HTTP port bootserve listens on. */
  httpPort: number;
  /**
   * Per GRUB CPU ($grub_cpu: x86_64, arm64): whether that GRUB has http. A CPU not listed, or
   * false, loads over TFTP.
   */
  httpFor: Readonly<Record<string, boolean>>;
  /** 'same' (default): the way GRUB came ($root); 'http': HTTP wherever this GRUB has it. */
  transport?: 'same' | 'http';
  warn?: ((message: string) => void) | undefined;
  /**
   * The GRUB CPU ($grub_cpu) each kernel is built for, by kernel path, when known (an EFI-stub
   * kernel is a PE image): its entry is shown only to that GRUB, so one folder per architecture
   * just works. Unknown kernels are shown to every GRUB.
   */
  kernelCpu?: ReadonlyMap<string, string>;
}

/** PE machine types of EFI-stub kernels → GRUB's $grub_cpu. */
const CPU_OF_MACHINE: ReadonlyMap<number, string> = new Map([
  [0x8664, 'x86_64'],
  [0xaa64, 'arm64'],
  [0x14c, 'i386'],
  [0x1c2, 'arm'],
  [0x5064, 'riscv64'],
]);

/** The GRUB CPU name of each signed firmware. */
export const GRUB_CPU = { 'efi-x64': 'x86_64', 'efi-arm64': 'arm64' } as const;

const LOCAL = 'local';

/** Paths GRUB gets through its device syntax and TFTP/HTTP as they are: no quoting, no encoding. */
const PLAIN_PATH = /^[A-Za-z0-9._/+-]+$/;

/** One word GRUB passes through untouched: single quotes, a literal ' as '\''. */
export function grubQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** Menu text: printable ASCII, quoted. */
function title(text: string): string {
  return grubQuote(text.replace(/[^\x20-\x7e]/g, '?'));
}

function describe(entry: LinuxEntry): string {
  const name = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  const initrds = entry.initrds.length === 0 ? 'no initrd' : entry.initrds.map(name).join(' + ');
  return `Linux: ${entry.dir || '/'} (${name(entry.kernel)} + ${initrds})`;
}

/** `command` tried RETRY_ATTEMPTS times; sets bootserve_ok=1 on success. */
function retried(what: string, command: string): string[] {
  const attempts = Array.from({ length: RETRY_ATTEMPTS }, (_, i) => i + 1).join(' ');
  return [
    `  set bootserve_ok=0`,
    `  for try in ${attempts}; do`,
    `    if ${command}; then set bootserve_ok=1; break; fi`,
    `    if [ "$try" = ${RETRY_ATTEMPTS} ]; then break; fi`,
    `    echo "bootserve: ${what}: try $try of ${RETRY_ATTEMPTS} failed, trying again in ${RETRY_PAUSE_SECONDS} s"`,
    `    sleep ${RETRY_PAUSE_SECONDS}`,
    `  done`,
  ];
}

function renderLinux(entry: LinuxEntry, cpu: string | undefined): string[] {
  const lines = renderLinuxEntry(entry);
  return cpu === undefined ? lines : [`if [ "$grub_cpu" = ${grubQuote(cpu)} ]; then`, ...lines.map((l) => `  ${l}`), 'fi'];
}

function renderLinuxEntry(entry: LinuxEntry): string[] {
  const file = (path: string) => `"\${bootserve_net}"/${path}`;
  const args = (entry.cmdline ?? '').split(' ').filter(Boolean).map(grubQuote);
  const lines = [
    `menuentry ${title(describe(entry))} --id ${grubQuote(entry.label)} {`,
    `  echo ${grubQuote(`bootserve: ${describe(entry)}`)} "from \${bootserve_net}"`,
    ...retried('kernel', ['linux', file(entry.kernel), ...args].join(' ')),
  ];
  if (entry.initrds.length > 0) {
    // GRUB pads each initrd to 4 bytes itself: no alignment trouble here.
    const initrd = retried('initrd', ['initrd', ...entry.initrds.map(file)].join(' '));
    lines.push(`  if [ "$bootserve_ok" = 1 ]; then`, ...initrd.map((l) => `  ${l}`), `  fi`);
  }
  lines.push(
    `  if [ "$bootserve_ok" = 1 ]; then boot; fi`,
    `  echo 'bootserve: boot failed; back to the menu in 10 s'`,
    `  sleep 10`,
    `}`,
  );
  return lines;
}

/** Which entry is the default: a label, a folder, a kernel path, or "local". */
function resolveDefault(entries: readonly LinuxEntry[], wanted: string | undefined, warn: (m: string) => void): string {
  const first = entries[0]?.label ?? LOCAL;
  if (wanted === undefined || wanted === '') return first;
  const norm = (p: string) => p.replace(/^\/+|\/+$/g, '');
  const w = norm(wanted);
  const hit = entries.find((e) => e.label === wanted || norm(e.dir) === w || e.kernel === w);
  if (hit) return hit.label;
  if (w === LOCAL) return LOCAL;
  warn(`grub menu: menu default ${JSON.stringify(wanted)} matches no Linux entry; using ${JSON.stringify(first)}`);
  return first;
}

/** The whole grub.cfg. Pure. */
export function renderGrubMenu(all: readonly BootEntry[], options: GrubMenuOptions): string {
  const warn = options.warn ?? (() => {});
  const entries: LinuxEntry[] = [];
  for (const entry of all) {
    if (entry.kind !== 'linux') continue;
    const odd = [entry.kernel, ...entry.initrds].find((p) => !PLAIN_PATH.test(p));
    const where = JSON.stringify(entry.dir || '/');
    if (odd !== undefined)
      warn(`grub menu: skipping ${where}: ${JSON.stringify(odd)} has characters GRUB cannot fetch as they are (use A-Z a-z 0-9 . _ / + -)`);
    else entries.push(entry);
  }
  const def = resolveDefault(entries, options.defaultEntry, warn);
  const cpuOf = (e: LinuxEntry | undefined) => (e === undefined ? undefined : options.kernelCpu?.get(e.kernel));
  // A default built for another CPU is not shown there: that GRUB defaults to its own first entry.
  const defCpu = cpuOf(entries.find((e) => e.label === def));
  const otherDefaults = [...new Set(entries.map(cpuOf))]
    .filter((cpu): cpu is string => cpu !== undefined && defCpu !== undefined && cpu !== defCpu)
    .map((cpu) => [cpu, entries.find((e) => cpuOf(e) === cpu)?.label] as const);
  const seconds = options.timeoutMs > 0 ? Math.max(1, Math.ceil(options.timeoutMs / 1000)) : -1;
  const transport = options.transport ?? 'same';
  const httpDevice = `(http,\${bootserve_server}:${options.httpPort})`;
  const http = Object.entries(options.httpFor).filter(([, has]) => has).map(([cpu]) => cpu);

  const lines = [
    '# Generated by bootserve from the files in the served folder, anew on every request.',
    '# Put a grub/grub.cfg of your own in the folder to serve that instead.',
    '#',
    '# 1. machines/<mac>.grub.cfg (e.g. machines/52-54-00-12-34-56.grub.cfg) runs first if it exists;',
    '#    it may `set bootserve_entry=<id>` to boot an entry below, or `set bootserve_net="$bootserve_http"`.',
    `# 2. Otherwise the menu; its default is taken after ${seconds > 0 ? `${seconds} s` : 'a choice (no timeout)'}.`,
    `# Kernels and initrds come the way GRUB came (TFTP after PXE, HTTP after HTTP Boot). Every download is tried`,
    `# up to ${RETRY_ATTEMPTS} times, ${RETRY_PAUSE_SECONDS} s apart. ISO images, EFI programs and iPXE scripts are in boot.ipxe only.`,
    '',
    '# The server: the address of the device this file came from, e.g. (tftp,198.18.0.2).',
    `regexp --set=1:bootserve_server '^[a-z]+,([^:,]+)' "$root"`,
    'if [ -z "$bootserve_server" ]; then set bootserve_server="$net_default_server"; fi',
    'set bootserve_tftp="(tftp,${bootserve_server})"',
    ...http.map((cpu) => `if [ "$grub_cpu" = ${grubQuote(cpu)} ]; then set bootserve_http="${httpDevice}"; fi`),
    ...(transport === 'same'
      ? [
          '# Kernels and initrds the way GRUB came: (tftp,...) after PXE, (http,...) after HTTP Boot.',
          'set bootserve_net="($root)"',
          'if [ -z "$root" ]; then set bootserve_net="$bootserve_tftp"; fi',
        ]
      : ['set bootserve_net="$bootserve_tftp"', 'if [ -n "$bootserve_http" ]; then set bootserve_net="$bootserve_http"; fi']),
    '',
    // GRUB's script has no way to write the MAC with hyphens (its regexp did not capture here):
    // it asks machines/52:54:00:12:34:56.grub.cfg and bootserve serves machines/52-54-00-12-34-56.grub.cfg.
    'set bootserve_machine="machines/${net_default_mac}.grub.cfg"',
    'echo "bootserve: GRUB $grub_cpu, MAC $net_default_mac, files from ${bootserve_net}"',
    // `test -f` lists the folder, which GRUB cannot do over the network: just source it; a missing
    // file fails the condition (ERROR 1 or 404 at once), and `if` keeps that error off the screen.
    'if [ -n "$net_default_mac" ]; then',
    '  if source "${bootserve_net}/${bootserve_machine}"; then echo "bootserve: ran ${bootserve_machine}"; fi',
    'fi',
    // Menu entries see exported variables only.
    'export bootserve_net',
    '',
    `set default=${grubQuote(def)}`,
    ...otherDefaults.map(([cpu, label]) => `if [ "$grub_cpu" = ${grubQuote(cpu)} ]; then set default=${grubQuote(label ?? LOCAL)}; fi`),
    `set timeout=${seconds}`,
    'if [ -n "$bootserve_entry" ]; then set default="$bootserve_entry"; set timeout=0; fi',
  ];
  for (const entry of entries) lines.push('', ...renderLinux(entry, cpuOf(entry)));
  lines.push('', `menuentry 'Boot from local disk' --id ${LOCAL} {`, `  echo 'bootserve: booting from local disk'`, '  exit', '}', '');
  return lines.join('\n');
}

/** The CPU of each kernel, from its PE header (EFI-stub kernels); unreadable or not PE: left out. */
async function kernelCpus(root: string, entries: readonly BootEntry[]): Promise<Map<string, string>> {
  const cpus = new Map<string, string>();
  for (const entry of entries) {
    if (entry.kind !== 'linux') continue;
    try {
      const file = await open(join(root, ...entry.kernel.split('/')), 'r');
      try {
        const { buffer, bytesRead } = await file.read(Buffer.alloc(4096), 0, 4096, 0);
        const machine = peMachine(buffer.subarray(0, bytesRead));
        const cpu = machine === undefined ? undefined : CPU_OF_MACHINE.get(machine);
        if (cpu !== undefined) cpus.set(entry.kernel, cpu);
      } finally {
        await file.close();
      }
    } catch {
      // Gone since the scan: its download will fail and say so.
    }
  }
  return cpus;
}

export async function generateGrubMenu(root: string, options: GrubMenuOptions & { dotfiles: boolean }): Promise<string> {
  const entries = await discoverEntries(root, { dotfiles: options.dotfiles, warn: options.warn }, 'grub');
  return renderGrubMenu(entries, { ...options, kernelCpu: await kernelCpus(root, entries) });
}
