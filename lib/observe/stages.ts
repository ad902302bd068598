// Which step of a boot a requested file is, from its name: the operator's list of machines
// (machines.ts) files every record under one, and the operator page (admin/fleet.ts) places
// running transfers with it. Self-contained on purpose: the page sends this very function to
// the browser (Function.prototype.toString), so it may use nothing from outside its body.

/** The columns of a boot's timeline; `other` is kept in a machine's history but has no column. */
export type Stage = 'dhcp' | 'boot-program' | 'script' | 'kernel' | 'initrd' | 'other';

export interface StageOf {
  stage: Stage;
  /** What it is, as a person says it: "kernel", "initrd", "boot program", "directory listing". */
  what: string;
}

/** The stage of one request for `path` (TFTP names have no leading slash; HTTP paths may carry a query). */
export function stageOf(path: string): StageOf {
  const clean = path.split('?')[0] ?? '';
  if (clean === '' || clean.endsWith('/')) return { stage: 'other', what: 'directory listing' };
  const name = (clean.split('/').pop() ?? '').toLowerCase();
  if (/^(favicon\.ico|robots\.txt|apple-touch-icon.*\.png)$/.test(name)) return { stage: 'other', what: 'browser noise' };
  if (/(^|\/)ipxe\/[^/]+$/.test(clean)) return { stage: 'boot-program', what: 'boot program' };
  if (/\.ipxe$/.test(name)) return { stage: 'script', what: /(^|\/)machines\//.test(clean) ? 'machine script' : 'boot script' };
  if (/cmdline/.test(name)) return { stage: 'other', what: 'cmdline' };
  // Before the extensions: a kernel may be an EFI stub (vmlinuz.efi).
  if (/^(initrd|initramfs)|\.(cpio(\.\w+)?|initrd)$/.test(name)) return { stage: 'initrd', what: 'initrd' };
  if (/^(vmlinuz|vmlinux|bzimage|kernel|linux)|\.(krn|kernel)$/.test(name)) return { stage: 'kernel', what: 'kernel' };
  if (/\.(efi|kpxe|kkpxe|kkkpxe|pxe|lkrn|0|com|n12)$/.test(name)) return { stage: 'boot-program', what: 'boot program' };
  if (/\.(cfg|conf)$/.test(name)) return { stage: 'script', what: 'boot config' };
  return { stage: 'other', what: 'file' };
}
