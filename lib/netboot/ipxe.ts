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
import { statSync } from 'node:fs';
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

/** How to get a missing binary, per firmware. */
const HOW_TO_GET: Record<Firmware, string> = {
  bios: 'apt install ipxe (Debian/Ubuntu) or dnf install ipxe-bootimgs-x86 (Fedora)',
  'efi-x64': 'apt install ipxe (Debian/Ubuntu) or dnf install ipxe-bootimgs-x86 (Fedora)',
  'efi-ia32': 'dnf install ipxe-bootimgs-x86 (Fedora), or build bin-i386-efi/snponly.efi from iPXE source',
  'efi-arm32': 'build bin-arm32-efi/snponly.efi from iPXE source',
  'efi-arm64': 'dnf install ipxe-bootimgs-aarch64 (Fedora), or build bin-arm64-efi/snponly.efi from iPXE source',
};

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
  /** One line per firmware: which file it gets from where, or exactly what is missing. */
  banner(): string[];
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
    banner: () =>
      (Object.keys(CANDIDATES) as Firmware[]).map((firmware) => {
        const b = found.get(firmware);
        const label = FIRMWARE_LABEL[firmware];
        if (b) return `iPXE for ${label}: ${b.name}${b.source === 'served' ? '' : ` (from ${b.path})`}`;
        const names = CANDIDATES[firmware].map((c) => c.name).join(' or ');
        return `iPXE for ${label}: missing ${names} (not in ${join(options.root, 'ipxe')}/ nor ${dirs.join(', ')}): ${HOW_TO_GET[firmware]}; ${label} clients get no answer`;
      }),
  };
}
