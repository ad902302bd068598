// End to end with real firmware: a QEMU VM whose iPXE (Debian's ipxe-qemu ROM) gets the
// generated /boot.ipxe from bootserve, downloads a real kernel and an initramfs through the
// script's retry loops and boots them; the initramfs prints a marker on the serial console.
//
// Needs qemu-system-x86_64, Debian's ipxe-qemu ROMs, and the kernel and busybox that
// scripts/e2e-netboot-assets.sh leaves in $BOOTSERVE_E2E_ASSETS. Without them the tests skip,
// saying what is missing, unless BOOTSERVE_E2E=required, when they fail instead.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  assetsDir,
  cpioNewc,
  findExecutable,
  findIpxeRom,
  findOvmf,
  markerInitramfs,
  startBootserve,
  startVm,
  type AccessLine,
  type Bootserve,
  type Vm,
} from '../helpers/qemu.js';
import { skipOrFail } from '../helpers/tools.js';

const REPO = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const MAC = '52:54:00:12:34:56';
const KERNEL = '/linux/vmlinuz';
const INITRD = '/linux/initrd.img';
const CMDLINE = 'console=ttyS0 panic=-1 bootserve_e2e=1';

interface Tools {
  qemu: string;
  rom: string;
  vmlinuz: string;
  busybox: string;
}

/** The tools and assets, or why they cannot be had. */
function findTools(): Tools | string {
  const qemu = findExecutable('qemu-system-x86_64');
  if (!qemu) return 'qemu-system-x86_64 not found (apt-get install qemu-system-x86)';
  const rom = findIpxeRom();
  if (!rom) return 'iPXE ROM for QEMU not found (apt-get install ipxe-qemu)';
  const assets = assetsDir();
  const vmlinuz = join(assets, 'vmlinuz');
  const busybox = join(assets, 'busybox');
  if (!existsSync(vmlinuz) || !existsSync(busybox)) return `kernel/busybox not in ${assets} (run scripts/e2e-netboot-assets.sh ${assets})`;
  if (!existsSync(join(REPO, 'dist/main.js'))) return 'bootserve is not built (run npm run build)';
  return { qemu, rom, vmlinuz, busybox };
}

function toolsOrSkip(t: TestContext): Tools | undefined {
  const tools = findTools();
  if (typeof tools === 'object') return tools;
  skipOrFail(t, tools);
  return undefined;
}

/** A served folder: linux/{vmlinuz,initrd.img,cmdline} and whatever `extra` adds. */
function bootFolder(tools: Tools, marker: string, extra: Record<string, string> = {}): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'bootserve-e2e-root-')));
  mkdirSync(join(dir, 'linux'));
  copyFileSync(tools.vmlinuz, join(dir, 'linux/vmlinuz'));
  writeFileSync(join(dir, 'linux/initrd.img'), markerInitramfs(readFileSync(tools.busybox), marker));
  writeFileSync(join(dir, 'linux/cmdline'), `# written by the e2e test\n${CMDLINE}\n`);
  for (const [name, body] of Object.entries(extra)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), body);
  }
  return dir;
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

const records = (server: Bootserve, path: string): AccessLine[] => server.access.filter((r) => r.path === path);
const completed = (server: Bootserve, path: string) => records(server, path).some((r) => r.outcome === 'complete' && r.status === 200);

/**
 * Follow one boot through its stages and fail naming the first one that did not happen.
 * Every wait also ends when the VM exits (a panic, or iPXE giving up), so a broken boot
 * fails in seconds rather than at the timeout.
 */
async function expectBoot(server: Bootserve, vm: Vm, marker: string, initrds: readonly string[] = [INITRD]): Promise<void> {
  let vmExited = false;
  void vm.exited.then(() => (vmExited = true));
  const context = () =>
    `\n--- serial console (tail) ---\n${vm.serial.tail()}` +
    `\n--- bootserve access log ---\n` +
    `${server.access.map((r) => `${r.method} ${r.path} ${r.status} ${r.outcome} ${r.bytesSent}/${r.bytesDue}`).join('\n')}` +
    `\n--- bootserve stderr ---\n${server.stderr.tail(1000)}`;
  // SeaBIOS, or OVMF, says this once no boot device (our NIC's iPXE ROM included) is left.
  const gaveUp = () => vmExited || /No bootable device|No bootable option|Shell> /.test(vm.serial.text);
  const stage = async (what: string, cond: () => boolean, timeoutMs: number) => {
    const ok = await waitUntil(() => cond() || gaveUp(), timeoutMs);
    if (!ok || !cond()) assert.fail(`${what}${gaveUp() ? ' (the VM gave up)' : ` within ${timeoutMs / 1000} s`}${context()}`);
  };
  await stage('iPXE did not fetch boot.ipxe', () => completed(server, '/boot.ipxe'), 60_000);
  await stage('kernel not downloaded', () => completed(server, KERNEL), 120_000);
  for (const initrd of initrds) await stage(`initrd ${initrd} not downloaded`, () => completed(server, initrd), 60_000);
  await stage('kernel did not start', () => vm.serial.text.includes('Linux version'), 30_000);
  await stage('marker not seen', () => vm.serial.text.includes(marker), 60_000);
  // The kernel prints its command line twice; the early serial console sometimes drops a
  // character under emulation, so either copy intact is proof enough.
  const names = initrds.map((_, i) => (i === 0 ? 'initrd' : `initrd${i + 1}`));
  const expected = `${names.map((n) => `initrd=${n}`).join(' ')} ${CMDLINE}`;
  assert.ok(
    vm.serial.text.split('\n').some((line) => line.includes(expected)),
    `kernel command line is not the one from linux/cmdline${context()}`,
  );
}

function newMarker(): string {
  return `BOOTSERVE-E2E-MARKER-${randomBytes(6).toString('hex')}`;
}

test(
  'e2e: iPXE boots a kernel and initramfs from the generated boot.ipxe (per-machine script picks the entry)',
  { timeout: 300_000 },
  async (t) => {
    const tools = toolsOrSkip(t);
    if (!tools) return;
    const marker = newMarker();
    const machine = `machines/${MAC.replaceAll(':', '-')}.ipxe`;
    // The per-machine script picks the Linux entry (label "linux", after its folder) at once,
    // whereas the menu would wait for its 60 s timeout: booting in time proves it was used.
    const dir = bootFolder(tools, marker, { [machine]: '#!ipxe\necho bootserve-e2e: per-machine script\nset bootserve-entry linux\n' });
    const server = await startBootserve(REPO, dir, ['--stall-timeout', '2s', '--menu-timeout', '60s']);
    const vm = startVm(tools.qemu, `http://10.0.2.2:${server.port}/boot.ipxe`, MAC);
    t.after(async () => {
      await vm.stop();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

  await expectBoot(server, vm, marker);
  assert.ok(completed(server, `/${machine}`), 'the per-machine script was not fetched');
  assert.ok(vm.serial.text.includes('bootserve-e2e: per-machine script'), 'the per-machine script did not run');
  for (const path of [KERNEL, INITRD]) {
    assert.deepEqual(records(server, path).map((r) => r.outcome), ['complete'], `${path}: one complete transfer`);
  }
});

/**
 * A TCP proxy that breaks the first kernel download: it forwards the request and the first
 * `passBytes` of the response, then stops reading from bootserve, so bootserve's stall guard
 * aborts the transfer; once bootserve has logged that (`aborted` resolves), it resets the
 * connection to the VM. Every other connection and request passes through untouched.
 */
function flakyProxy(
  targetPort: number,
  victim: string,
  passBytes: number,
  aborted: () => Promise<unknown>,
): Promise<{ close: () => Promise<void>; port: number; broken: () => number }> {
  let broken = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    let request = '';
    let sabotage = false;
    let passed = 0;
    client.on('data', (chunk: Buffer) => {
      if (broken === 0 && !sabotage) {
        request += chunk.toString('latin1');
        if (request.includes(`GET ${victim} `)) sabotage = true;
        if (request.length > 65536) request = request.slice(-4096);
      }
      upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('data', (chunk: Buffer) => {
      if (!sabotage) return void client.write(chunk);
      const room = passBytes - passed;
      passed += chunk.length;
      if (room > chunk.length) return void client.write(chunk);
      client.write(chunk.subarray(0, Math.max(0, room)));
      // Stop taking bytes: bootserve sees no progress and, after its stall window, resets.
      upstream.pause();
      sabotage = false;
      broken++;
      // (The fallback timer is unref'd: it must not keep the test process alive.)
      void Promise.race([aborted(), new Promise((r) => setTimeout(r, 30_000).unref())]).then(() => {
        client.resetAndDestroy();
        upstream.destroy();
      });
    });
    upstream.on('end', () => client.end());
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ close, port: (server.address() as { port: number }).port, broken: () => broken }));
  });
}

test('e2e: a kernel transfer that stalls is aborted by bootserve and the boot script fetches it again', { timeout: 300_000 }, async (t) => {
  const tools = toolsOrSkip(t);
  if (!tools) return;
  const marker = newMarker();
  // No per-machine script: iPXE gets a 404 for it and boots the menu's default after 1 s.
  const dir = bootFolder(tools, marker);
  const server = await startBootserve(REPO, dir, ['--stall-timeout', '2s', '--menu-timeout', '1s', '--menu-default', 'linux']);
  const kernelAborted = () => server.waitFor((lines) => lines.some((r) => r.path === KERNEL && r.outcome !== 'complete'), 60_000);
  const proxy = await flakyProxy(server.port, KERNEL, 512 * 1024, kernelAborted);
  const vm = startVm(tools.qemu, `http://10.0.2.2:${proxy.port}/boot.ipxe`, MAC);
  t.after(async () => {
    await vm.stop();
    await proxy.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  await expectBoot(server, vm, marker);
  t.diagnostic(`kernel transfers: ${records(server, KERNEL).map((r) => `${r.outcome} ${r.bytesSent}/${r.bytesDue}`).join(', ')}`);
  assert.equal(proxy.broken(), 1, 'the proxy did not break a kernel transfer');
  const kernel = records(server, KERNEL).map((r) => r.outcome);
  assert.ok(
    kernel.length === 2 && ['stalled', 'client-gone'].includes(kernel[0] ?? '') && kernel[1] === 'complete',
    `kernel transfers: expected [stalled, complete], got ${JSON.stringify(kernel)}`,
  );
  assert.match(vm.serial.text, /bootserve: try 1 of 5 failed, trying again/, 'the boot script did not report a retry');
  assert.deepEqual(records(server, INITRD).map((r) => r.outcome), ['complete']);
});

/**
 * Two initrds, as a UEFI machine must be given them: busybox in a gzip'd cpio, then /init in
 * an uncompressed one. The gzip'd one is padded with zeros to a multiple of 4 bytes, as the
 * menu's warning advises; without that, the 2019 UEFI iPXE hands the second to the kernel at
 * an unaligned offset and the kernel does not unpack it (tried by hand: "invalid magic at
 * start of compressed archive", then a panic).
 */
function twoInitrdFolder(tools: Tools, marker: string): string {
  const dir = bootFolder(tools, marker);
  const busybox = cpioNewc([
    { name: 'bin' },
    { name: 'dev' },
    { name: 'proc' },
    { name: 'bin/busybox', data: readFileSync(tools.busybox), mode: 0o755 },
  ]);
  const gzipped = gzipSync(busybox);
  writeFileSync(join(dir, 'linux/initrd.img'), Buffer.concat([gzipped, Buffer.alloc((4 - (gzipped.length % 4)) % 4)]));
  const init = ['#!/bin/busybox sh', `/bin/busybox echo ${marker}`, '/bin/busybox poweroff -f', ''].join('\n');
  writeFileSync(join(dir, 'linux/marker.cpio'), cpioNewc([{ name: 'init', data: Buffer.from(init), mode: 0o755 }]));
  return dir;
}

for (const firmware of ['uefi', 'bios'] as const) {
  test(
    `e2e: ${firmware === 'uefi' ? 'UEFI (OVMF)' : 'BIOS (SeaBIOS)'} iPXE boots a kernel with two initrds from the generated boot.ipxe`,
    { timeout: 300_000 },
    async (t) => {
      const tools = toolsOrSkip(t);
      if (!tools) return;
      const ovmf = firmware === 'uefi' ? findOvmf() : undefined;
      if (firmware === 'uefi' && !ovmf) {
        return skipOrFail(t, 'OVMF not found in /usr/share/OVMF (apt-get install ovmf)');
      }
      const marker = newMarker();
      const dir = twoInitrdFolder(tools, marker);
      const server = await startBootserve(REPO, dir, ['--stall-timeout', '2s', '--menu-timeout', '1s', '--menu-default', 'linux']);
      const started = Date.now();
      const vm = startVm(tools.qemu, `http://10.0.2.2:${server.port}/boot.ipxe`, MAC, ovmf);
      t.after(async () => {
        await vm.stop();
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      });

    await expectBoot(server, vm, marker, [INITRD, '/linux/marker.cpio']);
    t.diagnostic(`${firmware}: boot.ipxe to marker in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (firmware === 'uefi') assert.match(vm.serial.text, /EFI stub: Loaded initrd from command line option/);
    assert.doesNotMatch(server.stderr.text, /boot menu/, 'the menu warned about the initrds');
  });
}
