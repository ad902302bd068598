// Every boot file bootserve offers from outside the served folder, and which one each client
// gets: the iPXE binaries (ipxe.ts) and, with --secure-boot or --secure-boot-for, the signed
// shim → GRUB chain (signed.ts) with its generated grub/grub.cfg (grubmenu.ts).
//
// It rides the two hooks the iPXE catalog always had:
//   - file(name): a name the served root lacks → the path to serve, for HTTP and TFTP alike
//     (`ipxe/snponly.efi`, `shimx64.efi`, `grubx64.efi`, `grub/grub.cfg`, and GRUB's spelling of a
//     per-machine file, machines/52:54:00:12:34:56.grub.cfg → machines/52-54-00-12-34-56.grub.cfg);
//   - binaryFor / signedFor: firmware (and MAC) → the boot file, for the proxyDHCP policy.
// grub/grub.cfg is generated on each request into a private folder (mode 0700, removed at exit)
// and served from there, so TFTP and HTTP serve it as any file.
import { mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { secureBootMacs, type Config } from '../cli.js';
import { generateGrubMenu, GRUB_CPU } from './grubmenu.js';
import { findIpxeBinaries, type Firmware, type IpxeCatalog } from './ipxe.js';
import { findSignedChains, SIGNED_FIRMWARE, type SignedCatalog, type SignedFirmware } from './signed.js';

/** Which UEFI clients get the signed chain: none, all, or those MACs (lower case, colons). */
export type SecureBootChoice = { kind: 'off' } | { kind: 'all' } | { kind: 'macs'; macs: ReadonlySet<string> };

export interface BootCatalogOptions {
  root: string;
  /** The iPXE catalog (ipxe.ts): its names are served through file() too. */
  ipxe: IpxeCatalog;
  secureBoot: SecureBootChoice;
  secureBootDir?: string | undefined;
  /** For the generated grub.cfg. */
  menu: {
    timeoutMs: number;
    defaultEntry?: string | undefined;
    dotfiles: boolean;
    httpPort: () => number;
    warn?: (message: string) => void;
  };
  /** Tests: the system's tree. */
  systemRoot?: string;
}

export interface BootCatalog {
  /** The signed chain's boot file (shim) for this client, when the signed path is chosen for it. */
  signedFor(firmware: Firmware, mac: string): { name: string } | undefined;
  /** The file to serve for a name the served root does not have, or undefined. */
  file(name: string): string | undefined | Promise<string | undefined>;
  /** The generated grub/grub.cfg, for --print-menu. */
  grubMenu(): Promise<string>;
  /** The Secure Boot lines of the banner (the iPXE catalog has its own). */
  banner(): string[];
  /** Files served from outside the root (shim, GRUB): the user bootserve runs as must read them. */
  outside(): string[];
  /** Unsigned files in signed roles: bootserve refuses to start, printing these. */
  refusals: string[];
  /** Remove the generated files. */
  close(): void;
}

export const GRUB_CONFIG = 'grub/grub.cfg';
/** GRUB asks machines/52:54:00:12:34:56.grub.cfg (it cannot write hyphens); the file is named as for iPXE. */
const MACHINE_GRUB_CONFIG = /^machines\/((?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2})\.grub\.cfg$/;

const MENU_DIR_PREFIX = 'bootserve-grub-';

/** Folders of generated menus left by a bootserve that was killed (SIGKILL runs no cleanup). */
function removeStaleMenus(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = new RegExp(`^${MENU_DIR_PREFIX}(\\d+)-`).exec(name)?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // Another user's (bootserve after dropping to nobody cannot remove root's): left alone.
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function regularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function findBootFiles(options: BootCatalogOptions): BootCatalog {
  const ipxe = options.ipxe;
  const signed: SignedCatalog | undefined =
    options.secureBoot.kind === 'off'
      ? undefined
      : findSignedChains({
          root: options.root,
          secureBootDir: options.secureBootDir,
          ...(options.systemRoot ? { systemRoot: options.systemRoot } : {}),
        });
  const choice = options.secureBoot;
  let dir: string | undefined;
  let generation = 0;

  const grubMenu = () =>
    generateGrubMenu(options.root, {
      timeoutMs: options.menu.timeoutMs,
      defaultEntry: options.menu.defaultEntry,
      dotfiles: options.menu.dotfiles,
      httpPort: options.menu.httpPort(),
      httpFor: Object.fromEntries(SIGNED_FIRMWARE.map((f: SignedFirmware) => [GRUB_CPU[f], signed?.chainFor(f)?.abilities.http ?? false])),
      warn: options.menu.warn,
    });

  /** Write the menu to a new name and rename it over the served one: a transfer under way keeps its copy. */
  async function grubConfigFile(): Promise<string> {
    if (dir === undefined) {
      removeStaleMenus();
      dir = mkdtempSync(join(tmpdir(), `${MENU_DIR_PREFIX}${process.pid}-`));
    }
    const path = join(dir, 'grub.cfg');
    const next = `${path}.${++generation}`;
    await writeFile(next, await grubMenu());
    await rename(next, path);
    return path;
  }

  /** machines/52-54-00-12-34-56.grub.cfg under the root for "52:54:00:12:34:56", if it is a regular file. */
  function machineFile(mac: string): string | undefined {
    const path = join(options.root, 'machines', `${mac.toLowerCase().replaceAll(':', '-')}.grub.cfg`);
    // A symlink must stay inside the root, as for any served file.
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return undefined;
    }
    return real.startsWith(options.root + sep) && regularFile(real) ? real : undefined;
  }

  return {
    signedFor: (firmware, mac) => {
      if (signed === undefined || (choice.kind === 'macs' && !choice.macs.has(mac.toLowerCase()))) return undefined;
      const chain = signed.chainFor(firmware);
      return chain && { name: chain.shim.name };
    },
    file: (name) => {
      const plain = name.replace(/^\/+/, '');
      if (signed !== undefined && plain === GRUB_CONFIG) return grubConfigFile();
      const machine = MACHINE_GRUB_CONFIG.exec(plain)?.[1];
      if (signed !== undefined && machine !== undefined) return machineFile(machine);
      return ipxe.ipxeFile(plain) ?? signed?.signedFile(plain);
    },
    grubMenu,
    outside: () =>
      SIGNED_FIRMWARE.flatMap((f) => signed?.chainFor(f) ?? [])
        .flatMap((c) => [c.shim, c.grub])
        .filter((f) => f.source !== 'served')
        .map((f) => f.path),
    banner: () => [
      ...(signed?.banner() ?? []),
      ...(choice.kind === 'macs'
        ? [`Secure Boot path for ${choice.macs.size} machine(s) (--secure-boot-for); other UEFI clients get iPXE`]
        : []),
    ],
    refusals: signed?.refusals ?? [],
    close: () => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The catalog from the command line's options: what main.ts (or app.ts) calls. */
export function bootFilesFor(
  config: Config,
  root: string,
  ipxe: IpxeCatalog,
  httpPort: () => number,
  warn: (message: string) => void,
): BootCatalog {
  const secureBoot: SecureBootChoice =
    config.secureBootFor !== undefined
      ? { kind: 'macs', macs: secureBootMacs(config.secureBootFor) }
      : config.secureBoot
        ? { kind: 'all' }
        : { kind: 'off' };
  return findBootFiles({
    root,
    ipxe,
    secureBoot,
    secureBootDir: config.secureBootDir,
    menu: { timeoutMs: config.menuTimeoutMs, defaultEntry: config.menuDefault, dotfiles: config.dotfiles, httpPort, warn },
  });
}

/** The generated grub/grub.cfg for --print-menu: as the chain found for --secure-boot would have it. */
export function grubMenuFor(root: string, config: Config, warn: (message: string) => void): Promise<string> {
  const ipxe = findIpxeBinaries({ root, ipxeDir: config.ipxeDir });
  return bootFilesFor({ ...config, secureBoot: true }, root, ipxe, () => config.port, warn).grubMenu();
}
