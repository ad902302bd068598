// The Secure Boot path: the Microsoft-signed shim, the distribution-signed GRUB it loads, and
// (named by the generated grub/grub.cfg) a distribution-signed kernel.
//
// Served names are the ones shim expects: it fetches `grubx64.efi` (`grubaa64.efi` on arm64)
// from the directory of its own boot file, so both sit at the top of the served tree:
//   shimx64.efi + grubx64.efi (UEFI x64), shimaa64.efi + grubaa64.efi (UEFI ARM64).
// Looked up once at start, per architecture, as a pair from one distribution (shim only loads
// a GRUB signed by its own vendor), first hit wins:
//   1. the served directory's own shimx64.efi + grubx64.efi;
//   2. --secure-boot-dir DIR, a tree laid out like / (as `dpkg -x` of the packages leaves it);
//   3. the system's packages at their own paths.
// Every file found is checked for an Authenticode signature: an unsigned one in this role is
// refused (the firmware or shim would refuse it anyway, with a less helpful message).
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { peSignature } from './authenticode.js';
import { FIRMWARE_LABEL, type Firmware } from './ipxe.js';

export type SignedFirmware = 'efi-x64' | 'efi-arm64';
export const SIGNED_FIRMWARE: readonly SignedFirmware[] = ['efi-x64', 'efi-arm64'];

/** One distribution's layout for one architecture: where its shim and its network GRUB are. */
interface Layout {
  distribution: string;
  shim: string[];
  grub: string[];
}

/** Relative to a tree laid out like /. */
const LAYOUTS: Record<SignedFirmware, Layout[]> = {
  'efi-x64': [
    {
      // shim-signed, grub-efi-amd64-signed. Ubuntu's shim-signed names its file .signed.latest.
      distribution: 'Debian/Ubuntu',
      shim: ['usr/lib/shim/shimx64.efi.signed', 'usr/lib/shim/shimx64.efi.signed.latest'],
      grub: ['usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'],
    },
    // shim-x64, grub2-efi-x64: Fedora's grubx64.efi has the network modules built in.
    { distribution: 'Fedora', shim: ['boot/efi/EFI/fedora/shimx64.efi'], grub: ['boot/efi/EFI/fedora/grubx64.efi'] },
  ],
  'efi-arm64': [
    {
      distribution: 'Debian/Ubuntu',
      shim: ['usr/lib/shim/shimaa64.efi.signed', 'usr/lib/shim/shimaa64.efi.signed.latest'],
      grub: ['usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed'],
    },
    { distribution: 'Fedora', shim: ['boot/efi/EFI/fedora/shimaa64.efi'], grub: ['boot/efi/EFI/fedora/grubaa64.efi'] },
  ],
};

/** The names the firmware and shim ask for. */
export const SERVED_NAMES: Record<SignedFirmware, { shim: string; grub: string }> = {
  'efi-x64': { shim: 'shimx64.efi', grub: 'grubx64.efi' },
  'efi-arm64': { shim: 'shimaa64.efi', grub: 'grubaa64.efi' },
};

const PACKAGES: Record<SignedFirmware, string> = {
  'efi-x64': 'apt install shim-signed grub-efi-amd64-signed (Debian/Ubuntu) or dnf install shim-x64 grub2-efi-x64 (Fedora)',
  'efi-arm64': 'apt install shim-signed grub-efi-arm64-signed (Debian/Ubuntu) or dnf install shim-aa64 grub2-efi-aa64 (Fedora)',
};

/**
 * What the GRUB image can do, read from its bytes:
 * - follows proxyDHCP: Debian's `efinet-add-dhcp-proxy-support` patch (in 2.12) takes the server
 *   from the proxy offer and leaves the debug line "setting values from proxy offer" in the
 *   image; without it (Debian 12's 2.06) GRUB asks the LAN's DHCP server (siaddr) for its config.
 * - http: the image has GRUB's http module (its User-Agent string); 2.06's signed image has not.
 */
export interface GrubAbilities {
  version: string | undefined;
  followsProxyDhcp: boolean;
  http: boolean;
}

export function grubAbilities(image: Buffer): GrubAbilities {
  // The SBAT section names the upstream version: "grub,N,Free Software Foundation,grub,2.12,..."
  const sbat = /grub,\d+,Free Software Foundation,grub,([0-9][^,\n]*),/.exec(image.toString('latin1'));
  return {
    version: sbat?.[1],
    followsProxyDhcp: image.includes('setting values from proxy offer', 0, 'latin1'),
    http: image.includes('User-Agent: GRUB', 0, 'latin1'),
  };
}

export type Source = 'served' | 'secure-boot-dir' | 'system';

export interface SignedFile {
  /** The name clients ask for: `shimx64.efi`. */
  name: string;
  path: string;
  source: Source;
}

export interface SignedChain {
  firmware: SignedFirmware;
  distribution: string;
  shim: SignedFile;
  grub: SignedFile;
  abilities: GrubAbilities;
}

export interface SignedCatalog {
  chainFor(firmware: Firmware): SignedChain | undefined;
  /** The file to serve for a name the served root does not have (`grubx64.efi` → its package path). */
  signedFile(name: string): string | undefined;
  /** One line (or two) per architecture: which files from where, what is missing, what the LAN must do. */
  banner(): string[];
  /** Files found in a signed role without a signature: one line each, naming the fix. bootserve refuses to start. */
  refusals: string[];
}

export interface SignedOptions {
  root: string;
  secureBootDir?: string | undefined;
  /** Where the system's packages are ('/'; tests give a tree of their own). */
  systemRoot?: string;
  isFile?: (path: string) => boolean;
  /** The file's bytes, for the signature and ability checks (bounded: these images are a few MiB). */
  read?: (path: string) => Buffer;
}

const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

function regularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function readImage(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = Math.min(statSync(path).size, MAX_IMAGE_BYTES);
    const buffer = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buffer, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buffer.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

export function findSignedChains(options: SignedOptions): SignedCatalog {
  const isFile = options.isFile ?? regularFile;
  const read = options.read ?? readImage;
  const trees: { dir: string; source: Source }[] = [
    ...(options.secureBootDir !== undefined ? [{ dir: options.secureBootDir, source: 'secure-boot-dir' as const }] : []),
    { dir: options.systemRoot ?? '/', source: 'system' },
  ];
  const refusals: string[] = [];
  const chains = new Map<SignedFirmware, SignedChain>();
  const missing = new Map<SignedFirmware, string>();

  for (const firmware of SIGNED_FIRMWARE) {
    const names = SERVED_NAMES[firmware];
    const chain = locate(firmware);
    if (chain === undefined) {
      const looked = `${options.root}/ nor ${trees.map((t) => t.dir).join(', ')} at the packages' paths`;
      missing.set(firmware, `missing ${names.shim} + ${names.grub} (not in ${looked}): ${PACKAGES[firmware]}`);
      continue;
    }
    let unsigned = false;
    let grubImage: Buffer = Buffer.alloc(0);
    for (const [role, file] of [['shim', chain.shim], ['GRUB', chain.grub]] as const) {
      let image: Buffer;
      try {
        image = read(file.path);
      } catch (err) {
        refusals.push(`cannot read ${file.path} (${names[role === 'shim' ? 'shim' : 'grub']}): ${(err as Error).message}`);
        unsigned = true;
        continue;
      }
      const signature = peSignature(image);
      if (signature.kind !== 'signed') {
        unsigned = true;
        const fix =
          file.source === 'served'
            ? 'remove it from the served folder to use the packaged one, or put the signed one there'
            : `use the signed package: ${PACKAGES[firmware]}`;
        const what = `${file.path} as ${file.name} (${role} for ${FIRMWARE_LABEL[firmware]})`;
        refusals.push(`refusing ${what}: ${signature.reason}, so Secure Boot firmware would refuse it; ${fix}`);
      }
      if (role === 'GRUB') grubImage = image;
    }
    if (!unsigned) chains.set(firmware, { ...chain, abilities: grubAbilities(grubImage) });
  }

  function locate(firmware: SignedFirmware): Omit<SignedChain, 'abilities'> | undefined {
    const names = SERVED_NAMES[firmware];
    // The served folder first: the operator's own pair wins.
    const shim = join(options.root, names.shim);
    const grub = join(options.root, names.grub);
    if (isFile(shim) && isFile(grub)) {
      return {
        firmware,
        distribution: 'served folder',
        shim: { name: names.shim, path: shim, source: 'served' },
        grub: { name: names.grub, path: grub, source: 'served' },
      };
    }
    for (const tree of trees) {
      for (const layout of LAYOUTS[firmware]) {
        const shimPath = layout.shim.map((rel) => join(tree.dir, rel)).find(isFile);
        const grubPath = layout.grub.map((rel) => join(tree.dir, rel)).find(isFile);
        if (shimPath === undefined || grubPath === undefined) continue;
        return {
          firmware,
          distribution: layout.distribution,
          shim: { name: names.shim, path: shimPath, source: tree.source },
          grub: { name: names.grub, path: grubPath, source: tree.source },
        };
      }
    }
    return undefined;
  }

  const byName = new Map<string, string>();
  for (const chain of chains.values()) {
    for (const file of [chain.shim, chain.grub]) if (file.source !== 'served') byName.set(file.name, file.path);
  }

  return {
    chainFor: (firmware) => chains.get(firmware as SignedFirmware),
    // shim asks for `//grubx64.efi` over HTTP and `/grubx64.efi` over TFTP.
    signedFile: (name) => byName.get(name.replace(/^\/+/, '')),
    refusals,
    banner: () =>
      SIGNED_FIRMWARE.flatMap((firmware) => {
        const label = `Secure Boot for ${FIRMWARE_LABEL[firmware]}`;
        const chain = chains.get(firmware);
        if (chain === undefined) {
          const why = missing.get(firmware);
          return why === undefined ? [] : [`${label}: ${why}; ${FIRMWARE_LABEL[firmware]} clients get iPXE`];
        }
        const from = (f: SignedFile) => (f.source === 'served' ? f.name : `${f.name} (from ${f.path})`);
        const { version, followsProxyDhcp, http } = chain.abilities;
        const grub = `${chain.distribution} GRUB ${version ?? '?'}${http ? ', has http' : ', no http: kernels over TFTP'}`;
        const lines = [`${label}: ${from(chain.shim)} → ${from(chain.grub)} (${grub}) → grub/grub.cfg`];
        if (!followsProxyDhcp) {
          lines.push(
            `${label}: warning: this GRUB does not follow proxyDHCP ` +
              `(GRUB ${version ?? '?'} without Debian's efinet-add-dhcp-proxy-support patch, e.g. Debian 12's 2.06): ` +
              "it asks the LAN's DHCP server for grub/grub.cfg, so that server must set next-server (siaddr) to this host " +
              '(or siaddr 0 and option 66 = this host, NUL-terminated); GRUB 2.12 from Debian 13 needs nothing',
          );
        }
        return lines;
      }),
  };
}
