// Which iPXE binary each firmware gets, and where its bytes come from.
//
// Every binary is offered under a virtual name `ipxe/<name>` (e.g. `ipxe/undionly.kpxe`). Looked
// up once at start, per firmware, first hit wins:
//   1. the served directory's `ipxe/` folder (`<root>/ipxe/undionly.kpxe`): served as any file;
//   2. `--ipxe-dir DIR` when given, else the system's iPXE package directories (Debian/Ubuntu
//      /usr/lib/ipxe/, Fedora /usr/share/ipxe/): served through `ipxeFile()` when the root has
//      no such file, by TFTP and HTTP alike.
// A firmware without a binary is reported (banner) and its clients are not answered; the other
// firmware kinds are unaffected.
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

export type Firmware = 'bios' | 'efi-ia32' | 'efi-x64' | 'efi-arm32' | 'efi-arm64';

export const FIRMWARE_LABEL: Record<Firmware, string> = {
  bios: 'BIOS',
  'efi-ia32': 'UEFI IA32',
  'efi-x64': 'UEFI x64',
  'efi-arm32': 'UEFI ARM32',
  'efi-arm64': 'UEFI ARM64',
};

/** One candidate: its name under `ipxe/`, and where distributions put it (relative paths). */
interface Candidate {
  name: string;
  packaged: string[];
}

/** Preferred first: snponly.efi drives the NIC through the firmware's own driver (SNP). */
const CANDIDATES: Record<Firmware, Candidate[]> = {
  bios: [{ name: 'undionly.kpxe', packaged: ['undionly.kpxe'] }],
  'efi-x64': [
    { name: 'snponly.efi', packaged: ['snponly.efi', 'ipxe-snponly-x86_64.efi', 'x86_64-efi/snponly.efi'] },
    { name: 'ipxe.efi', packaged: ['ipxe.efi', 'ipxe-x86_64.efi', 'x86_64-efi/ipxe.efi'] },
  ],
  'efi-ia32': [
    { name: 'snponly-i386.efi', packaged: ['snponly-i386.efi', 'i386-efi/snponly.efi'] },
    { name: 'ipxe-i386.efi', packaged: ['ipxe-i386.efi', 'i386-efi/ipxe.efi'] },
  ],
  'efi-arm32': [
    { name: 'snponly-arm32.efi', packaged: ['snponly-arm32.efi', 'arm32-efi/snponly.efi'] },
    { name: 'ipxe-arm32.efi', packaged: ['ipxe-arm32.efi', 'arm32-efi/ipxe.efi'] },
  ],
  'efi-arm64': [
    { name: 'snponly-arm64.efi', packaged: ['snponly-arm64.efi', 'arm64-efi/snponly.efi'] },
    { name: 'ipxe-arm64.efi', packaged: ['ipxe-arm64.efi', 'arm64-efi/ipxe.efi'] },
  ],
};

/** Where to get a missing binary: Debian's and Fedora's packages have x86 (Debian 13 also ARM64). */
export const HOW_TO_GET = 'apt install ipxe (Debian/Ubuntu), dnf install ipxe-bootimgs-x86 (Fedora)';

export const SYSTEM_IPXE_DIRS = ['/usr/lib/ipxe', '/usr/share/ipxe'];

export interface IpxeBinary {
  firmware: Firmware;
  /** The name clients ask for, relative to the served root: `ipxe/snponly.efi`. */
  name: string;
  /** Where the bytes are. */
  path: string;
  source: 'served' | 'ipxe-dir' | 'system';
}

export interface IpxeCatalog {
  binaryFor(firmware: Firmware): IpxeBinary | undefined;
  /**
   * The file to serve for a name the served root does not have (`ipxe/undionly.kpxe` →
   * `/usr/lib/ipxe/undionly.kpxe`), or undefined. Only the catalog's own names map; a leading
   * `/` is ignored.
   */
  ipxeFile(name: string): string | undefined;
  /** The binaries `ipxeFile` serves from outside the root, by name: a listing of ipxe/ shows them. */
  external(): { name: string; path: string }[];
  /**
   * One line per firmware that has a binary (which file, from where), then at most one line
   * naming every firmware that has none (their clients get no answer).
   */
  banner(): string[];
  /** Firmware kinds without a binary, in the catalog's order. */
  missing(): Firmware[];
}

export interface CatalogOptions {
  /** The served directory (a real path). */
  root: string;
  /** --ipxe-dir: replaces the system directories. */
  ipxeDir?: string | undefined;
  systemDirs?: string[];
  isFile?: (path: string) => boolean;
}

function regularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function findIpxeBinaries(options: CatalogOptions): IpxeCatalog {
  const isFile = options.isFile ?? regularFile;
  const dirs = options.ipxeDir !== undefined ? [options.ipxeDir] : (options.systemDirs ?? SYSTEM_IPXE_DIRS);
  const source = options.ipxeDir !== undefined ? 'ipxe-dir' : 'system';

  const found = new Map<Firmware, IpxeBinary>();
  for (const firmware of Object.keys(CANDIDATES) as Firmware[]) {
    const binary = locate(firmware);
    if (binary) found.set(firmware, binary);
  }
  const byName = new Map([...found.values()].filter((b) => b.source !== 'served').map((b) => [b.name, b.path]));

  function locate(firmware: Firmware): IpxeBinary | undefined {
    const candidates = CANDIDATES[firmware];
    // The served folder first, for every candidate name: the operator's own build wins.
    for (const c of candidates) {
      const path = join(options.root, 'ipxe', c.name);
      if (isFile(path)) return { firmware, name: `ipxe/${c.name}`, path, source: 'served' };
    }
    for (const c of candidates) {
      for (const dir of dirs) {
        for (const rel of c.packaged) {
          const path = join(dir, rel);
          if (isFile(path)) return { firmware, name: `ipxe/${c.name}`, path, source };
        }
      }
    }
    return undefined;
  }

  return {
    binaryFor: (firmware) => found.get(firmware),
    ipxeFile: (name) => byName.get(name.replace(/^\/+/, '')),
    external: () => [...byName].map(([name, path]) => ({ name, path })),
    missing: () => (Object.keys(CANDIDATES) as Firmware[]).filter((f) => !found.has(f)),
    banner: () => {
      const lines: string[] = [];
      const missing: Firmware[] = [];
      for (const firmware of Object.keys(CANDIDATES) as Firmware[]) {
        const b = found.get(firmware);
        if (!b) missing.push(firmware);
        else lines.push(`iPXE for ${FIRMWARE_LABEL[firmware]}: ${b.name}${b.source === 'served' ? '' : ` (from ${b.path})`}`);
      }
      if (missing.length > 0) {
        const names = missing.map((f) => CANDIDATES[f][0]?.name).join(', ');
        lines.push(
          `iPXE for ${missing.map((f) => FIRMWARE_LABEL[f]).join(', ')}: none ` +
            `(${names} not in ${join(options.root, 'ipxe')}/ nor ${dirs.join(', ')}); ` +
            `those clients get no answer`,
        );
      }
      return lines;
    },
  };
}

/**
 * --ipxe-dir must name a folder bootserve can list: a typo would otherwise show up only as
 * missing binaries. A message naming the flag, or undefined.
 */
export function checkIpxeDir(dir: string | undefined): string | undefined {
  if (dir === undefined) return undefined;
  try {
    if (!statSync(dir).isDirectory()) return `--ipxe-dir ${dir}: not a directory`;
    accessSync(dir, constants.R_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `--ipxe-dir ${dir}: no such directory`;
    return `--ipxe-dir ${dir}: cannot read it (${code ?? String(err)})`;
  }
}

/**
 * proxyDHCP with no boot program for any firmware answers nobody: a refusal naming where the
 * binaries may come from (`flag` is what the operator typed: --pxe or --proxy-dhcp), or undefined.
 */
export function noBootProgram(catalog: IpxeCatalog, root: string, flag: string): string | undefined {
  if (catalog.missing().length < Object.keys(CANDIDATES).length) return undefined;
  return (
    `${flag}: no iPXE boot program for any firmware: put undionly.kpxe and snponly.efi in ${join(root, 'ipxe')}/, ` +
    `point --ipxe-dir at a folder that has them, or install them: ${HOW_TO_GET}`
  );
}

/** The binaries served from outside the served folder (--ipxe-dir, the system's package). */
export function servedFromOutside(catalog: IpxeCatalog): string[] {
  const firmware = Object.keys(CANDIDATES) as Firmware[];
  return [...new Set(firmware.flatMap((f) => catalog.binaryFor(f) ?? []).filter((b) => b.source !== 'served').map((b) => b.path))];
}
