// End to end on the virtual LAN (test/helpers/lab.ts), with Secure Boot enforced: OVMF with
// Microsoft's keys enrolled (and AAVMF on ARM64), a LAN whose own DHCP server knows nothing of
// booting, and `bootserve --pxe --secure-boot-for MACS --secure-boot-dir DIR` beside it, DIR
// being what scripts/secureboot-assets.sh unpacked from Debian 13 (shim-signed, the signed GRUB
// network images, signed cloud kernels):
//   1. x64 PXE: edk2 PXE → proxyDHCP → 4011 → TFTP shimx64.efi → grubx64.efi → grub/grub.cfg →
//      signed kernel + initrds over TFTP → Linux with "Secure boot enabled" and the payload;
//   2. x64 HTTP Boot: the same chain with shim's URL in the HTTPClient offer;
//   3. the negative control: a MAC not in --secure-boot-for gets iPXE, which the same firmware
//      refuses ("Access Denied"), so this test can fail;
//   4. x64 PXE with the guest frozen mid-kernel (over GRUB's http, by a per-machine file):
//      bootserve cuts the stalled transfer, grub.cfg's retry fetches it again, Linux boots;
//   5. x64 PXE with the kernel over GRUB's http (per-machine file): test 1's TFTP figures' twin;
//   6. ARM64 (AAVMF): shimaa64.efi → grubaa64.efi → an arm64 kernel, chosen by a per-machine
//      machines/<mac>.grub.cfg.
// Needs root, iproute2, dnsmasq, python3, qemu-system-x86, ovmf, ipxe and the assets; ARM64 also
// qemu-system-arm and qemu-efi-aarch64. Without them it skips with the reason, unless
// BOOTSERVE_E2E=required.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  arm64Missing,
  createLab,
  findSecureBootTools,
  LAN,
  removeStaleLabs,
  startRouter,
  startSecureGuest,
  type Lab,
  type SecureBootTools,
} from '../helpers/lab.js';
import {
  markerInitramfs,
  PAYLOAD_LINE,
  payloadCpio,
  startBootserve,
  type AccessLine,
  type Bootserve,
  type DhcpLine,
  type Vm,
} from '../helpers/qemu.js';
import { sha256, skipOrFail, type Child } from '../helpers/tools.js';

const REPO = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const HTTP_PORT = 8080;
const PAYLOAD_BYTES = 4 * 1024 * 1024;
const MACS = {
  pxe: '52:54:00:5b:00:01',
  http: '52:54:00:5b:00:02',
  denied: '52:54:00:5b:00:03',
  stall: '52:54:00:5b:00:04',
  arm64: '52:54:00:5b:00:05',
  viaHttp: '52:54:00:5b:00:06',
} as const;
// BOOTSERVE_E2E_SB_ONLY=1,3 runs only those subtests (the others are skipped, visibly).
const ONLY = process.env.BOOTSERVE_E2E_SB_ONLY?.split(',').map((n) => n.trim());
const picked = (n: string) => (ONLY === undefined || ONLY.includes(n) ? {} : { skip: 'not in BOOTSERVE_E2E_SB_ONLY' });
const SIGNED_MACS = [MACS.pxe, MACS.http, MACS.stall, MACS.arm64, MACS.viaHttp];

interface Folder {
  dir: string;
  marker: string;
  payloadSha256: string;
}

/** linux/ (x64, the menu's default) and linux-arm64/, each a signed kernel, the marker initramfs and a payload. */
function bootFolder(tools: SecureBootTools): Folder {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'bootserve-e2e-sb-')));
  const marker = `BOOTSERVE-E2E-SB-${randomBytes(6).toString('hex')}`;
  const payload = randomBytes(PAYLOAD_BYTES);
  const arches: [string, string, string][] = [['linux', 'amd64', 'console=ttyS0']];
  if (tools.arm64) arches.push(['linux-arm64', 'arm64', 'console=ttyAMA0']);
  for (const [folder, arch, console] of arches) {
    mkdirSync(join(dir, folder));
    copyFileSync(join(tools.assets, `vmlinuz-${arch}`), join(dir, folder, 'vmlinuz'));
    writeFileSync(join(dir, folder, 'initrd.img'), markerInitramfs(readFileSync(join(tools.assets, `busybox-${arch}`)), marker, true));
    writeFileSync(join(dir, folder, 'payload.cpio'), payloadCpio(payload));
    writeFileSync(join(dir, folder, 'cmdline'), `${console} panic=-1 bootserve_e2e=secureboot\n`);
  }
  mkdirSync(join(dir, 'machines'));
  // Per-machine files: the ARM64 machine names its entry (its GRUB would pick it anyway: the
  // kernel's CPU); two x64 machines load over GRUB's own http instead of TFTP (the stall test,
  // and the TFTP vs HTTP measurement).
  writeFileSync(join(dir, 'machines', `${MACS.arm64.replaceAll(':', '-')}.grub.cfg`), 'set bootserve_entry=linux-arm64\n');
  for (const mac of [MACS.stall, MACS.viaHttp])
    writeFileSync(join(dir, 'machines', `${mac.replaceAll(':', '-')}.grub.cfg`), 'set bootserve_net="$bootserve_http"\n');
  return { dir, marker, payloadSha256: sha256(payload) };
}

interface View {
  serial: string;
  transfers: AccessLine[];
}

interface Stage {
  failed: string;
  done: (view: View) => boolean;
  ms: number;
}

const got = (view: View, protocol: 'http' | 'tftp', path: RegExp) =>
  view.transfers.some(
    (r) =>
      (r.protocol ?? 'http') === protocol &&
      r.outcome === 'complete' &&
      (protocol === 'tftp' || (r.method === 'GET' && r.status === 200)) &&
      path.test(r.path),
  );
const printed = (re: RegExp) => (view: View) => re.test(view.serial);

function stages(method: 'pxe' | 'http', arch: 'x64' | 'arm64', folder: Folder, kernelOver: 'http' | 'tftp'): Stage[] {
  const names = arch === 'x64' ? { shim: 'shimx64.efi', grub: 'grubx64.efi' } : { shim: 'shimaa64.efi', grub: 'grubaa64.efi' };
  const dir = arch === 'x64' ? 'linux' : 'linux-arm64';
  const by = method === 'pxe' ? 'tftp' : 'http';
  const slow = arch === 'arm64' ? 3 : 1;
  const firmware: Stage[] =
    method === 'pxe'
      ? [
          { failed: 'no offer: edk2 PXE took no DHCP offer', done: printed(/Station IP address is 198\.18\.0\.\d+/), ms: 90_000 * slow },
          { failed: `no 4011 answer naming ${names.shim}`, done: printed(new RegExp(`NBP filename is ${names.shim}`)), ms: 45_000 },
          { failed: `TFTP: ${names.shim} not downloaded`, done: (v) => got(v, 'tftp', new RegExp(`${names.shim}$`)), ms: 45_000 * slow },
        ]
      : [
          { failed: 'no offer: edk2 HTTP Boot took no HTTPClient offer', done: printed(/URI: http:\/\/\S+/), ms: 90_000 * slow },
          { failed: `HTTP: ${names.shim} not downloaded`, done: (v) => got(v, 'http', new RegExp(`${names.shim}$`)), ms: 45_000 * slow },
        ];
  return [
    ...firmware,
    {
      failed: `${by}: shim did not fetch ${names.grub} (or refused it)`,
      done: (v) => got(v, by, new RegExp(`${names.grub}$`)),
      ms: 60_000 * slow,
    },
    { failed: `${by}: GRUB did not fetch grub/grub.cfg`, done: (v) => got(v, by, /grub\/grub\.cfg$/), ms: 60_000 * slow },
    { failed: `${kernelOver}: kernel not downloaded`, done: (v) => got(v, kernelOver, new RegExp(`${dir}/vmlinuz$`)), ms: 120_000 * slow },
    { failed: 'EFI stub: Secure Boot not enabled', done: printed(/secureboot: Secure boot enabled/), ms: 90_000 * slow },
    { failed: '/init did not print the payload hash', done: printed(PAYLOAD_LINE), ms: 90_000 * slow },
    { failed: 'marker not printed', done: printed(new RegExp(folder.marker)), ms: 30_000 },
  ];
}

const GAVE_UP =
  /PXE-E\d\d[^\r\n]*|Access Denied|Security Violation|Verification failed[^\r\n]*|Kernel panic[^\r\n]*|prohibited by secure boot policy/;

interface Env {
  lab: Lab;
  tools: SecureBootTools;
  server: Bootserve;
  folder: Folder;
  logs: { name: string; child: Child }[];
}

function describeFailure(env: Env, vm: Vm, since: number, mac: string): string {
  const transfers = env.server.access
    .slice(since)
    .map(
      (r) =>
        `${r.protocol ?? 'http'} ${r.method ?? ''} ${r.path} ${r.status ?? ''} ` +
        `${r.outcome} ${r.bytesSent}/${r.bytesDue} ${r.userAgent ?? ''}`,
    );
  const dhcp = env.server.dhcp
    .filter((r) => r.mac.toLowerCase() === mac)
    .map((r: DhcpLine) => `port ${r.port} ${r.message} arch=${r.arch ?? '-'} ${r.answer} ${r.kind ?? r.reason ?? ''} ${r.bootFile ?? ''}`);
  return [
    `--- grub.cfg's lines and GRUB's errors ---\n` +
    `${(vm.serial.text.match(/(bootserve: [^\r\n]*|error: [^\r\n]*)/g) ?? []).slice(0, 30).join('\n')}`,
    `--- serial console (tail) ---\n${vm.serial.tail(4000)}`,
    `--- bootserve DHCP records for ${mac} ---\n${dhcp.join('\n')}`,
    `--- bootserve HTTP and TFTP records of this boot ---\n${transfers.join('\n')}`,
    `--- bootserve output (tail) ---\n${env.server.stdout.tail(1500)}\n${env.server.stderr.tail(1000)}`,
    ...env.logs.map(({ name, child }) => `--- ${name} (tail) ---\n${child.lines.slice(-10).join('\n')}\n${child.stderr().slice(-1000)}`),
  ].join('\n');
}

interface BootResult {
  vm: Vm;
  since: number;
  view: () => View;
  times: { stage: string; ms: number }[];
  /** Milliseconds from the VM's start to the last stage. */
  totalMs: number;
}

async function boot(
  t: TestContext,
  env: Env,
  options: { arch: 'x64' | 'arm64'; method: 'pxe' | 'http'; mac: string; kernelOver?: 'http' | 'tftp'; stages?: Stage[] },
  during?: (vm: Vm, tap: string, view: () => View) => Promise<void>,
): Promise<BootResult> {
  const since = env.server.access.length;
  const tap = env.lab.addTap();
  const startedAt = Date.now();
  const vm = startSecureGuest(env.lab, env.tools, { arch: options.arch, method: options.method, mac: options.mac, tap });
  t.after(() => vm.stop());
  let exited = false;
  void vm.exited.then(() => (exited = true));
  const view = (): View => ({ serial: vm.serial.text, transfers: env.server.access.slice(since) });
  const side = during?.(vm, tap, view);
  const times: BootResult['times'] = [];
  for (const stage of options.stages ??
    stages(options.method, options.arch, env.folder, options.kernelOver ?? (options.method === 'pxe' ? 'tftp' : 'http'))) {
    const deadline = Date.now() + stage.ms;
    for (;;) {
      if (stage.done(view())) break;
      const gaveUp = options.stages ? undefined : GAVE_UP.exec(vm.serial.text)?.[0];
      const why: string | undefined =
        gaveUp !== undefined
          ? `the firmware said "${gaveUp.trim()}"`
          : exited
            ? 'the VM exited'
            : Date.now() > deadline
              ? `not within ${stage.ms / 1000} s`
              : undefined;
      if (why !== undefined)
        assert.fail(
          `${options.arch} ${options.method} boot failed: ${stage.failed} (${why})\n${describeFailure(env, vm, since, options.mac)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    times.push({ stage: stage.failed, ms: Date.now() - startedAt });
  }
  await side;
  const totalMs = Date.now() - startedAt;
  await Promise.race([vm.exited, new Promise((r) => setTimeout(r, 20_000).unref())]);
  return { vm, since, view, times, totalMs };
}

function checkGuest(env: Env, result: BootResult, mac: string): void {
  const serial = result.vm.serial.text;
  const context = () => `\n${describeFailure(env, result.vm, result.since, mac)}`;
  assert.equal(PAYLOAD_LINE.exec(serial)?.[1], env.folder.payloadSha256, `the payload's sha256 in the guest differs${context()}`);
  assert.match(
    serial,
    /Kernel is locked down from EFI Secure Boot|secureboot: Secure boot enabled/,
    `no Secure Boot in the kernel log${context()}`,
  );
  assert.match(serial, /bootserve_e2e=secureboot/, `the kernel command line is not the one from cmdline${context()}`);
}

/** Each complete download of a file (HEAD requests left out): protocol, size, and how long it took. */
function transfers(result: BootResult, path: RegExp): string {
  const records = result.view().transfers.filter((r) => path.test(r.path) && r.outcome === 'complete' && r.method !== 'HEAD');
  const ms = (r: AccessLine) => (r as AccessLine & { durationMs?: number }).durationMs;
  return records
    .map((r) => `${r.protocol ?? 'http'} ${(r.bytesSent / 1e6).toFixed(1)} MB in ${((ms(r) ?? 0) / 1000).toFixed(1)} s`)
    .join(', ');
}

function report(t: TestContext, what: string, result: BootResult): void {
  const at = (re: RegExp) => result.times.find((s) => re.test(s.stage))?.ms;
  const s = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);
  t.diagnostic(
    `${what}: marker after ${s(result.totalMs)} (GRUB fetched at ${s(at(/did not fetch grub[xa]/))}, grub.cfg at ${s(at(/grub\.cfg/))}, ` +
      `kernel done at ${s(at(/kernel not downloaded/))}, Secure Boot line at ${s(at(/Secure Boot not enabled/))})`,
  );
  t.diagnostic(`${what}: kernel ${transfers(result, /vmlinuz$/)}; initrds ${transfers(result, /(initrd\.img|payload\.cpio)$/)}`);
}

test(
  'e2e-secureboot: bootserve --pxe --secure-boot boots OVMF/AAVMF with Secure Boot enforced through shim → GRUB → a signed kernel',
  { timeout: 1_200_000 },
  async (t) => {
    const tools = findSecureBootTools();
    if (typeof tools === 'string') return skipOrFail(t, tools);
    const stale = removeStaleLabs();
    if (stale.length > 0) t.diagnostic(`removed a stale lab: ${stale.join(', ')}`);
    let lab: Lab;
    try {
      lab = createLab();
    } catch (err) {
      return skipOrFail(t, `cannot build the lab's network namespaces: ${(err as Error).message}`);
    }
    const folder = bootFolder(tools);
    t.after(async () => {
      await lab.close();
      rmSync(folder.dir, { recursive: true, force: true });
    });
    const logs: Env['logs'] = [];
    const [dhcp, ra] = await startRouter(lab, tools);
    if (dhcp) logs.push({ name: "router's dnsmasq", child: dhcp });
    if (ra) logs.push({ name: 'router advertiser', child: ra });
    const args = [
      '--pxe',
      '--secure-boot-for',
      SIGNED_MACS.join(','),
      '--secure-boot-dir',
      join(tools.assets, 'root'),
      '--menu-timeout',
      '1s',
      '--menu-default',
      'linux',
    ];
    const server = await startBootserve(REPO, folder.dir, args, { wrap: lab.exec('server'), host: LAN.server, port: HTTP_PORT });
    t.after(async () => {
      await server.stop();
      // Its generated grub.cfg's folder, should it have been killed before removing it.
      for (const name of readdirSync(tmpdir()))
        if (name.startsWith(`bootserve-grub-${server.child.pid}-`)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
    });
    const env: Env = { lab, tools, server, folder, logs };
    const banner = server.stdout.text + server.stderr.text;
    t.diagnostic(`lab ${lab.id}: bootserve ${args.join(' ')}`);
    assert.match(
      banner,
      /Secure Boot for UEFI x64: shimx64\.efi \(from \S+shimx64\.efi\.signed\) → grubx64\.efi \(from \S+grubnetx64\.efi\.signed\)/,
      `the banner names the chain:\n${banner}`,
    );

    await t.test(
      '1. x64 PXE: shimx64.efi → grubx64.efi → grub.cfg → signed kernel over TFTP → Linux with Secure Boot',
      { timeout: 240_000, ...picked('1') },
      async (st) => {
        const result = await boot(st, env, { arch: 'x64', method: 'pxe', mac: MACS.pxe });
        report(st, 'x64 PXE', result);
        checkGuest(env, result, MACS.pxe);
        const dhcpAcks = server.dhcp.filter((r) => r.mac === MACS.pxe && r.port === 4011 && r.answer === 'ack');
        assert.ok(
          dhcpAcks.some((r) => r.bootFile === 'shimx64.efi'),
          `the 4011 answer names shimx64.efi: ${JSON.stringify(dhcpAcks)}`,
        );
        // shim's optional files: each answered ERROR 1 at once, so nothing waits on them.
        const optional = result.view().transfers.filter((r) => r.protocol === 'tftp' && /revocations|shim_certificate/.test(r.path));
        st.diagnostic(`shim's optional files: ${optional.map((r) => `${r.path} ${r.outcome}`).join(', ') || 'none asked'}`);
      },
    );

    await t.test(
      '2. x64 HTTP Boot: http://…/shimx64.efi → //grubx64.efi → grub.cfg over HTTP → Linux with Secure Boot',
      { timeout: 240_000, ...picked('2') },
      async (st) => {
        const result = await boot(st, env, { arch: 'x64', method: 'http', mac: MACS.http });
        report(st, 'x64 HTTP Boot', result);
        checkGuest(env, result, MACS.http);
      },
    );

    await t.test(
      '3. negative control: iPXE offered to the same firmware is refused (Access Denied)',
      { timeout: 240_000, ...picked('3') },
      async (st) => {
        const denied: Stage[] = [
          { failed: 'snponly.efi not offered', done: printed(/NBP filename is ipxe\/snponly\.efi/), ms: 120_000 },
          { failed: 'the firmware did not refuse iPXE with Access Denied', done: printed(/Access Denied/), ms: 90_000 },
        ];
        const result = await boot(st, env, { arch: 'x64', method: 'pxe', mac: MACS.denied, stages: denied });
        assert.doesNotMatch(result.view().serial, /iPXE initialising devices/, 'unsigned iPXE must not run under Secure Boot');
        await result.vm.stop();
      },
    );

    await t.test(
      '4. x64 PXE, guest frozen mid-kernel: bootserve cuts the stalled download, grub.cfg fetches it again, Linux boots',
      { timeout: 300_000, ...picked('4') },
      async (st) => {
        let froze = false;
        const freeze = async (vm: Vm, tap: string, view: () => View) => {
          env.lab.shape(tap, '16mbit');
          const deadline = Date.now() + 180_000;
          while (!/bootserve: Linux: linux\//.test(view().serial)) {
            if (Date.now() > deadline || vm.child.exitCode !== null) return;
            await new Promise((r) => setTimeout(r, 100));
          }
          await new Promise((r) => setTimeout(r, 1500));
          if (got(view(), 'http', /linux\/vmlinuz$/)) return;
          vm.child.kill('SIGSTOP');
          froze = true;
          try {
            const cut = await server.waitFor(
              (lines) => lines.some((r) => /linux\/vmlinuz$/.test(r.path) && r.outcome !== 'complete'),
              30_000,
            );
            if (!cut) st.diagnostic('bootserve did not cut the frozen transfer within 30 s');
          } finally {
            env.lab.unshape(tap);
            vm.child.kill('SIGCONT');
          }
        };
        const result = await boot(st, env, { arch: 'x64', method: 'pxe', mac: MACS.stall, kernelOver: 'http' }, freeze);
        report(st, 'x64 PXE with a stall', result);
        checkGuest(env, result, MACS.stall);
        assert.ok(froze, 'the kernel download finished before the guest could be frozen');
        const kernel = result.view().transfers.filter((r) => /linux\/vmlinuz$/.test(r.path));
        st.diagnostic(`kernel transfers: ${kernel.map((r) => `${r.outcome} ${r.bytesSent}/${r.bytesDue}`).join(', ')}`);
        assert.ok(
          kernel.length >= 2 && kernel[0]?.outcome !== 'complete' && kernel[kernel.length - 1]?.outcome === 'complete',
          `kernel transfers: expected a cut one then a complete one, got ${JSON.stringify(kernel.map((r) => r.outcome))}`,
        );
        assert.match(result.view().serial, /bootserve: kernel: try 1 of 5 failed, trying again/, 'grub.cfg did not report the retry');
      },
    );

    await t.test(
      "5. x64 PXE with kernel and initrds over GRUB's http (a per-machine grub.cfg), beside test 1's TFTP figures",
      { timeout: 300_000, ...picked('5') },
      async (st) => {
        const result = await boot(st, env, { arch: 'x64', method: 'pxe', mac: MACS.viaHttp, kernelOver: 'http' });
        report(st, "x64 PXE, GRUB's http", result);
        checkGuest(env, result, MACS.viaHttp);
        assert.match(result.view().serial, /bootserve: ran machines\/52:54:00:5b:00:06\.grub\.cfg/, 'the per-machine file ran');
      },
    );

    await t.test(
      '6. ARM64 PXE (AAVMF): shimaa64.efi → grubaa64.efi → machines/<mac>.grub.cfg picks the arm64 kernel → Linux with Secure Boot',
      { timeout: 600_000, ...picked('6') },
      async (st) => {
        const missing = arm64Missing(tools);
        if (missing !== undefined) return skipOrFail(st, missing);
        const result = await boot(st, env, { arch: 'arm64', method: 'pxe', mac: MACS.arm64 });
        report(st, 'ARM64 PXE', result);
        checkGuest(env, result, MACS.arm64);
      },
    );
  },
);
