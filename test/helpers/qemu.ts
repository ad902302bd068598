// Pieces of the QEMU/iPXE end-to-end test: finding the tools, building an initramfs, running
// bootserve as a child process and a VM whose iPXE firmware boots from it.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KEEP_ROOT } from './tools.js';

/** Where scripts/e2e-netboot-assets.sh leaves vmlinuz and busybox. */
export function assetsDir(): string {
  return process.env.BOOTSERVE_E2E_ASSETS || join(process.env.TMPDIR || tmpdir(), 'bootserve-e2e');
}

export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The iPXE option ROM QEMU gives its virtio NIC (from Debian's ipxe-qemu). QEMU finds it by
 * itself: this only tells whether it is there. (Naming it with romfile= made SeaBIOS skip it.)
 */
export function findIpxeRom(): string | undefined {
  const candidates = ['/usr/lib/ipxe/qemu/efi-virtio.rom', '/usr/share/qemu/efi-virtio.rom'];
  return candidates.find((p) => existsSync(p));
}

/**
 * OVMF (Debian's ovmf package): the firmware code, and the variable store to copy for each VM.
 * With it, QEMU's NIC ROM (efi-virtio.rom holds both) runs UEFI iPXE instead of BIOS iPXE.
 */
export function findOvmf(): { code: string; vars: string } | undefined {
  const code = '/usr/share/OVMF/OVMF_CODE.fd';
  const vars = '/usr/share/OVMF/OVMF_VARS.fd';
  return existsSync(code) && existsSync(vars) ? { code, vars } : undefined;
}

// ---------------------------------------------------------------------------------------------
// cpio "newc": the format the kernel unpacks an initramfs from. One header per member, the
// name and the data each padded to 4 bytes, a TRAILER!!! member to end.

export interface CpioMember {
  name: string;
  /** File contents, or undefined for a directory. */
  data?: Buffer | undefined;
  mode?: number;
}

export function cpioNewc(members: readonly CpioMember[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const add = (name: string, mode: number, data: Buffer, nlink: number) => {
    const nameBytes = Buffer.from(name + '\0', 'utf8');
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'ascii');
    parts.push(header, nameBytes, pad(header.length + nameBytes.length), data, pad(data.length));
  };
  for (const m of members) {
    if (m.data === undefined) add(m.name, 0o040000 | (m.mode ?? 0o755), Buffer.alloc(0), 2);
    else add(m.name, 0o100000 | (m.mode ?? 0o644), m.data, 1);
  }
  add('TRAILER!!!', 0, Buffer.alloc(0), 1);
  return Buffer.concat(parts);
}

/**
 * An initramfs whose /init prints `marker` on the console and powers the machine off. With
 * `hashPayload`, it first prints `bootserve-payload <sha256>  /payload` (see PAYLOAD_LINE) of a
 * /payload that another initrd brings (payloadCpio): proof that those very bytes arrived, and
 * that the kernel unpacked both initrds.
 */
export function markerInitramfs(busybox: Buffer, marker: string, hashPayload = false): Buffer {
  const hash = hashPayload ? ['/bin/busybox echo bootserve-payload $(/bin/busybox sha256sum /payload)'] : [];
  const init = ['#!/bin/busybox sh', ...hash, `/bin/busybox echo ${marker}`, '/bin/busybox poweroff -f', ''].join('\n');
  return cpioNewc([
    { name: 'bin' },
    { name: 'dev' },
    { name: 'proc' },
    { name: 'bin/busybox', data: busybox, mode: 0o755 },
    { name: 'init', data: Buffer.from(init), mode: 0o755 },
  ]);
}

/** A second initrd holding only /payload (cpioNewc pads it: it starts and ends 4-byte aligned). */
export function payloadCpio(payload: Buffer): Buffer {
  return cpioNewc([{ name: 'payload', data: payload }]);
}

/** What the /init of markerInitramfs prints with hashPayload: `bootserve-payload <sha256>  /payload`. */
export const PAYLOAD_LINE = /bootserve-payload ([0-9a-f]{64}) +\/payload/;

// ---------------------------------------------------------------------------------------------

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A line-oriented view of a child's output, with waits on what it prints. */
export class OutputWatch {
  text = '';
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  append(chunk: string): void {
    this.text += chunk;
    this.check();
  }

  check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves true once `test` holds, false after timeoutMs. */
  until(test: () => boolean, timeoutMs: number): Promise<boolean> {
    if (test()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = { test, resolve: () => (clearTimeout(timer), resolve(true)) };
      this.waiters.push(waiter);
    });
  }

  tail(chars = 2500): string {
    // Drop terminal escapes and carriage returns so a failure message reads cleanly.
    return this.text.slice(-chars).replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc|\r/g, '');
  }
}

export interface AccessLine {
  /** 'http' or 'tftp' (absent from bootserves older than TFTP: HTTP). */
  protocol?: string;
  /** HTTP only. */
  method: string;
  path: string;
  status: number;
  outcome: string;
  bytesSent: number;
  bytesDue: number;
  /** The client's address, as bootserve logged it. */
  client?: string;
  userAgent?: string;
  /** TFTP only: the negotiated block and window sizes, and the ERROR that ended the transfer. */
  blksize?: number;
  windowsize?: number;
  error?: string;
}

/** A DHCP record of the access log (bootserve --proxy-dhcp): one per packet answered or ignored. */
export interface DhcpLine {
  protocol: 'dhcp';
  client: string;
  mac: string;
  port: number;
  message: string;
  arch: number | null;
  answer: 'offer' | 'ack' | 'ignored';
  kind?: string;
  bootFile?: string;
  reason?: string;
}

export interface BootserveOptions {
  /** Command and arguments to run node under, e.g. ['ip', 'netns', 'exec', NAME]. */
  wrap?: readonly string[];
  /** --host (default 127.0.0.1). */
  host?: string;
  /** --port (default: a free one on 127.0.0.1). */
  port?: number;
}

export interface Bootserve {
  port: number;
  child: ChildProcess;
  /** Access-log records (JSON lines on stdout) in the order they were written: HTTP and TFTP. */
  access: AccessLine[];
  /** DHCP records, likewise. */
  dhcp: DhcpLine[];
  stdout: OutputWatch;
  stderr: OutputWatch;
  waitFor(test: (lines: readonly AccessLine[]) => boolean, timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startBootserve(
  repo: string,
  dir: string,
  args: readonly string[],
  options: BootserveOptions = {},
): Promise<Bootserve> {
  const port = options.port ?? (await freePort());
  const command = [
    ...(options.wrap ?? []),
    process.execPath,
    join(repo, 'bin/bootserve.js'),
    ...KEEP_ROOT,
    dir,
    '--host',
    options.host ?? '127.0.0.1',
    '--port',
    String(port),
    '--log-format',
    'json',
    ...args,
  ];
  const child = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = new OutputWatch();
  const stderr = new OutputWatch();
  const access: AccessLine[] = [];
  const dhcp: DhcpLine[] = [];
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const record = JSON.parse(line) as Partial<AccessLine>;
        if (record.protocol === 'dhcp') dhcp.push(record as unknown as DhcpLine);
        else if (typeof record.outcome === 'string' && typeof record.path === 'string') access.push(record as AccessLine);
      } catch {
        // not JSON: ignore
      }
    }
    stdout.append(chunk);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.append(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const listening = await stdout.until(() => stdout.text.includes('listening on'), 10_000);
  if (!listening) {
    child.kill('SIGKILL');
    throw new Error(`bootserve did not start listening on port ${port}:\n${stdout.tail()}\n${stderr.tail()}`);
  }
  return {
    port,
    child,
    access,
    dhcp,
    stdout,
    stderr,
    waitFor: (test, timeoutMs) => stdout.until(() => test(access), timeoutMs),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export interface Vm {
  child: ChildProcess;
  serial: OutputWatch;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * A VM under TCG (no KVM: CI has none) whose NIC's iPXE ROM gets its DHCP boot file name
 * from QEMU's user-mode network: `bootUrl`, a URL on 10.0.2.2, which is the host's loopback.
 * Serial console on stdout; -no-reboot turns a kernel panic into QEMU exiting. SeaBIOS by
 * default; given `uefi` (from findOvmf), OVMF with a fresh copy of its variable store.
 */
export function startVm(qemu: string, bootUrl: string, mac: string, uefi?: { code: string; vars: string }): Vm {
  let varsDir: string | undefined;
  const firmware: string[] = [];
  if (uefi) {
    varsDir = mkdtempSync(join(tmpdir(), 'bootserve-ovmf-'));
    copyFileSync(uefi.vars, join(varsDir, 'vars.fd'));
    firmware.push(
      '-drive',
      `if=pflash,format=raw,readonly=on,file=${uefi.code}`,
      '-drive',
      `if=pflash,format=raw,file=${join(varsDir, 'vars.fd')}`,
    );
  }
  const args = [
    ...firmware,
    '-accel', 'tcg',
    '-machine', 'pc',
    '-m', '256',
    '-smp', '1',
    '-nographic',
    '-no-reboot',
    '-boot', 'order=n',
    '-netdev', `user,id=n0,bootfile=${bootUrl}`,
    '-device', `virtio-net-pci,netdev=n0,mac=${mac}`,
  ];
  return spawnVm([qemu, ...args], () => {
    if (varsDir) rmSync(varsDir, { recursive: true, force: true });
  });
}

/**
 * Run a VM command line (qemu and its arguments, possibly behind a wrapper such as
 * `ip netns exec NAME`) with its serial console on stdout, as a Vm. `cleanup` runs once it exits.
 */
export function spawnVm(command: readonly string[], cleanup: () => void = () => {}): Vm {
  const child = spawn(command[0] as string, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const serial = new OutputWatch();
  child.stdout?.setEncoding('latin1').on('data', (chunk: string) => serial.append(chunk));
  child.stderr?.setEncoding('latin1').on('data', (chunk: string) => serial.append(chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => {
    cleanup();
    serial.check();
  });
  return {
    child,
    serial,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
