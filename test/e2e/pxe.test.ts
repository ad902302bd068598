// End to end on a virtual LAN, with the firmware real machines have: a LAN whose own DHCP
// server (dnsmasq, addresses only) knows nothing of booting, `bootserve --pxe` beside it, and
// QEMU guests that boot from their NIC with stock firmware:
//   1. UEFI PXE (OVMF, edk2's own PXE client): proxyDHCP, 4011, TFTP snponly.efi, then iPXE;
//   2. UEFI HTTP Boot (OVMF, PXE off): the EFI binary over HTTP, then iPXE;
//   3. BIOS (SeaBIOS with QEMU's iPXE ROM): proxyDHCP straight to boot.ipxe;
//   4. BIOS again, with the machine frozen mid-kernel: bootserve's stall guard cuts the
//      transfer, the generated menu's retry fetches it again, /-/machines shows both;
//   5. the operator page (/-/) in headless chromium, loaded while that machine is frozen: the
//      timelines of all four, the cut kernel in red; its screenshot is kept for CI at
//      $BOOTSERVE_E2E_ARTIFACTS/operator-page.png when set (test/helpers/browser.ts).
// Every boot goes through the generated boot.ipxe to a Linux whose initramfs prints the
// sha256 of a payload it carries and a marker: the right bytes arrived. A boot that fails
// names the step (no offer, no 4011 answer, TFTP, HTTP, Linux).
//
// The lab (test/helpers/lab.ts) needs root, iproute2, dnsmasq, python3, qemu-system-x86, ovmf,
// ipxe, ipxe-qemu and the assets of scripts/e2e-netboot-assets.sh; without them the test skips
// with the reason, unless BOOTSERVE_E2E=required. BOOTSERVE_E2E_LAB_RA=off leaves IPv6 router
// advertisements out, to measure what an IPv4-only LAN costs iPXE. docs/pxe-lab.md has the
// lab's notes, boot times, and how to boot it with dnsmasq in bootserve's place.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createLab,
  findLabTools,
  getInLab,
  LAN,
  removeStaleLabs,
  startGuest,
  startRouter,
  type Firmware,
  type Lab,
  type LabTools,
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
import { artifactsDir, browse, CHROMIUM, type Browsed } from '../helpers/browser.js';
import { have, need, sha256, skipOrFail, type Child } from '../helpers/tools.js';

const REPO = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const ROUTER_ADVERTISEMENTS = process.env.BOOTSERVE_E2E_LAB_RA !== 'off';
const HTTP_PORT = 8080;
const KERNEL = '/linux/vmlinuz';
const INITRD = '/linux/initrd.img';
const PAYLOAD = '/linux/payload.cpio';
const CMDLINE = 'console=ttyS0 panic=-1 bootserve_e2e=pxe';
// Small enough for four boots under TCG in CI, large enough to span many TCP windows.
const PAYLOAD_BYTES = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The served folder

interface Folder {
  dir: string;
  marker: string;
  payloadSha256: string;
}

function bootFolder(tools: LabTools): Folder {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'bootserve-e2e-pxe-')));
  const marker = `BOOTSERVE-E2E-PXE-${randomBytes(6).toString('hex')}`;
  const payload = randomBytes(PAYLOAD_BYTES);
  mkdirSync(join(dir, 'linux'));
  copyFileSync(tools.vmlinuz, join(dir, 'linux/vmlinuz'));
  // Two initrds, as the generated menu loads them (initrd=initrd initrd=initrd2 on UEFI): the
  // payload is only there if the kernel unpacked the second.
  writeFileSync(join(dir, 'linux/initrd.img'), markerInitramfs(readFileSync(tools.busybox), marker, true));
  writeFileSync(join(dir, 'linux/payload.cpio'), payloadCpio(payload));
  writeFileSync(join(dir, 'linux/cmdline'), `# written by the e2e-pxe test\n${CMDLINE}\n`);
  // No ipxe/ folder: bootserve serves Debian's iPXE binaries from /usr/lib/ipxe.
  return { dir, marker, payloadSha256: sha256(payload) };
}

// ---------------------------------------------------------------------------------------------
// Following a boot

/** What a boot looks like so far: the guest's console and bootserve's HTTP and TFTP records since it started. */
interface BootView {
  serial: string;
  transfers: AccessLine[];
}

interface Stage {
  /** The step that failed if this never happens. */
  failed: string;
  done: (view: BootView) => boolean;
  ms: number;
}

const fetched = (view: BootView, path: string | RegExp) =>
  view.transfers.some(
    (r) =>
      r.method === 'GET' &&
      r.status === 200 &&
      r.outcome === 'complete' &&
      (typeof path === 'string' ? r.path === path : path.test(r.path)),
  );
const printed = (re: RegExp) => (view: BootView) => re.test(view.serial);

// What each firmware does before iPXE runs (iPXE prints "net0: <address>/<mask>" once DHCP is done).
const FIRMWARE_STAGES: Record<Firmware, Stage[]> = {
  bios: [
    {
      failed: "no address: iPXE (SeaBIOS's NIC ROM) got no DHCP answer from the LAN's DHCP server",
      done: printed(/net0: 198\.18\.0\.\d+\/255/),
      ms: 60_000,
    },
  ],
  'uefi-pxe': [
    {
      failed: 'no offer: edk2 PXE took no DHCP offer (an address from the router plus a proxy offer)',
      done: printed(/Station IP address is 198\.18\.0\.\d+/),
      ms: 90_000,
    },
    { failed: 'no 4011 answer: edk2 PXE got no boot file name from proxyDHCP', done: printed(/NBP filename is \S+/), ms: 45_000 },
    { failed: 'TFTP: edk2 PXE did not download its boot file', done: printed(/NBP file downloaded successfully/), ms: 45_000 },
    { failed: 'snponly.efi did not start iPXE', done: printed(/iPXE initialising devices/), ms: 30_000 },
    { failed: 'no address: UEFI iPXE got no DHCP answer', done: printed(/net0: 198\.18\.0\.\d+\/255/), ms: 60_000 },
  ],
  'uefi-http': [
    {
      failed: 'no offer: edk2 HTTP Boot took no DHCP offer with a boot URI (an address from the router plus an HTTPClient proxy offer)',
      done: printed(/URI: http:\/\/\S+/),
      ms: 90_000,
    },
    { failed: 'HTTP: edk2 HTTP Boot did not download the EFI binary', done: (v) => fetched(v, /\.efi$/), ms: 45_000 },
    { failed: 'the EFI binary did not start iPXE', done: printed(/iPXE initialising devices/), ms: 30_000 },
    { failed: 'no address: UEFI iPXE got no DHCP answer', done: printed(/net0: 198\.18\.0\.\d+\/255/), ms: 60_000 },
  ],
};

/** From iPXE to the payload check: the same on every firmware. */
function commonStages(folder: Folder): Stage[] {
  return [
    {
      failed: `no proxy offer for iPXE: it got no boot.ipxe URL on ${LAN.server}`,
      done: printed(new RegExp(`Filename: http://${LAN.server.replaceAll('.', '\\.')}\\S*/boot\\.ipxe`)),
      ms: 30_000,
    },
    { failed: 'HTTP: boot.ipxe not fetched', done: (v) => fetched(v, '/boot.ipxe'), ms: 30_000 },
    { failed: 'HTTP: kernel not downloaded', done: (v) => fetched(v, KERNEL), ms: 120_000 },
    { failed: 'HTTP: initrd not downloaded', done: (v) => fetched(v, INITRD), ms: 60_000 },
    { failed: 'HTTP: second initrd (payload.cpio) not downloaded', done: (v) => fetched(v, PAYLOAD), ms: 60_000 },
    { failed: 'Linux did not start', done: printed(/Linux version/), ms: 60_000 },
    {
      failed: '/init did not print the payload hash (it did not run, or the kernel did not unpack the second initrd)',
      done: printed(PAYLOAD_LINE),
      ms: 90_000,
    },
    { failed: 'marker not printed', done: printed(new RegExp(folder.marker)), ms: 30_000 },
  ];
}

// Firmware messages that mean it gave up: fail at once rather than at a stage's timeout.
const GAVE_UP =
  new RegExp(
    /PXE-E\d\d[^\r\n]*|No bootable device|Nothing to boot|No configuration methods succeeded|/.source +
    /BdsDxe: failed to load Boot\d+ "UEFI (PXE|HTTP)[^\r\n]*|Kernel panic[^\r\n]*/.source,
  );

interface Env {
  lab: Lab;
  tools: LabTools;
  server: Bootserve;
  folder: Folder;
  /** More logs for a failure message: the router's dnsmasq and advertiser. */
  logs: { name: string; child: Child }[];
}

const dhcpOf = (env: Env, mac: string): DhcpLine[] => env.server.dhcp.filter((r) => r.mac.toLowerCase() === mac);

/** What bootserve did for this machine, in one line: tells "not answered" from "answer not taken". */
function serverSummary(env: Env, mac: string, since: number): string {
  const dhcp = dhcpOf(env, mac);
  const count = (port: number, answer: DhcpLine['answer']) => dhcp.filter((r) => r.port === port && r.answer === answer).length;
  const tftp = env.server.access.slice(since).filter((r) => r.protocol === 'tftp');
  const http = env.server.access.slice(since).filter((r) => r.protocol !== 'tftp');
  return `bootserve sent ${count(67, 'offer')} proxy offer(s) on 67 and ${count(4011, 'ack')} answer(s) on 4011, ` +
    `ignored ${dhcp.filter((r) => r.answer === 'ignored').length} packet(s), ` +
    `logged ${tftp.length} TFTP (${tftp.filter((r) => r.outcome === 'complete').length} complete) ` +
    `and ${http.length} HTTP record(s) for this boot`;
}

/** The part of /-/machines this test reads. */
interface MachineJson {
  mac: string | null;
  steps: { protocol: string; file?: string; outcome: string }[];
  lastError: { file?: string; outcome: string } | null;
}

interface BootResult {
  vm: Vm;
  /** Where this boot's records start in bootserve's access log. */
  since: number;
  view: () => BootView;
  /** Milliseconds from starting the VM to each stage passed, by stage. */
  times: { stage: string; ms: number }[];
}

function describeFailure(env: Env, vm: Vm, since: number, mac: string): string {
  const transfers = env.server.access
    .slice(since)
    .map(
      (r) =>
        `${r.client ?? '?'} ${r.protocol ?? 'http'} ${r.method ?? ''} ${r.path} ${r.status ?? ''} ` +
        `${r.outcome} ${r.bytesSent}/${r.bytesDue} ${r.userAgent ?? ''}`,
    );
  const dhcp = dhcpOf(env, mac).map(
    (r) => `${r.client} port ${r.port} ${r.message} arch=${r.arch ?? '-'} ${r.answer} ${r.kind ?? r.reason ?? ''} ${r.bootFile ?? ''}`,
  );
  const others = env.logs.map(
    ({ name, child }) => `--- ${name} (tail) ---\n${child.lines.slice(-20).join('\n')}\n${child.stderr().slice(-1500)}`,
  );
  return [
    `--- serial console (tail) ---\n${vm.serial.tail(3000)}`,
    `--- bootserve DHCP records for ${mac} ---\n${dhcp.join('\n')}`,
    `--- bootserve HTTP and TFTP records of this boot ---\n${transfers.join('\n')}`,
    `--- bootserve output (tail) ---\n${env.server.stdout.tail(2000)}\n${env.server.stderr.tail(1000)}`,
    ...others,
  ].join('\n');
}

/**
 * Start a guest and follow its boot stage by stage, failing with the first step that did not
 * happen (or with the firmware's own error message when it gave up). `during` runs beside the
 * stages, e.g. to freeze the machine mid-transfer.
 */
async function boot(
  t: TestContext,
  env: Env,
  firmware: Firmware,
  mac: string,
  during?: (vm: Vm, tap: string, view: () => BootView) => Promise<void>,
): Promise<BootResult> {
  const since = env.server.access.length;
  const tap = env.lab.addTap();
  const startedAt = Date.now();
  const vm = startGuest(env.lab, env.tools, { firmware, mac, tap });
  t.after(() => vm.stop());
  let exited = false;
  void vm.exited.then(() => (exited = true));
  const view = (): BootView => ({ serial: vm.serial.text, transfers: env.server.access.slice(since) });
  const side = during?.(vm, tap, view);
  const times: BootResult['times'] = [];

  for (const stage of [...FIRMWARE_STAGES[firmware], ...commonStages(env.folder)]) {
    const deadline = Date.now() + stage.ms;
    for (;;) {
      if (stage.done(view())) break;
      const gaveUp = GAVE_UP.exec(vm.serial.text)?.[0];
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
          `${firmware} boot failed: ${stage.failed} (${why}); ${serverSummary(env, mac, since)}\n${describeFailure(env, vm, since, mac)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    times.push({ stage: stage.failed, ms: Date.now() - startedAt });
  }
  await side;
  await Promise.race([vm.exited, new Promise((r) => setTimeout(r, 30_000).unref())]);

  // The proof: the payload's hash as the guest computed it, the command line of linux/cmdline.
  const serial = vm.serial.text;
  assert.equal(
    PAYLOAD_LINE.exec(serial)?.[1],
    env.folder.payloadSha256,
    `${firmware}: the payload's sha256 in the guest differs\n${describeFailure(env, vm, since, mac)}`,
  );
  // The early serial console sometimes drops a character under emulation: one intact copy of
  // the two the kernel prints is enough.
  assert.ok(
    serial.split('\n').some((line) => line.includes(`initrd=initrd initrd=initrd2 ${CMDLINE}`)),
    `${firmware}: the kernel command line is not the one from linux/cmdline\n${describeFailure(env, vm, since, mac)}`,
  );
  assert.doesNotMatch(serial, /invalid magic at start of compressed archive/, `${firmware}: the kernel could not unpack an initrd`);
  return { vm, since, view, times };
}

/**
 * bootserve's own account of a boot (with --pxe): the answers it sent to this MAC and the
 * files it sent over TFTP, step by step as the firmware needs them.
 */
function assertServerSteps(env: Env, firmware: Firmware, mac: string, result: BootResult): void {
  const dhcp = dhcpOf(env, mac);
  const answered = (port: number, answer: DhcpLine['answer'], kind: string, file: RegExp) =>
    dhcp.some((r) => r.port === port && r.answer === answer && r.kind === kind && file.test(r.bootFile ?? ''));
  const context = () => `\n${describeFailure(env, result.vm, result.since, mac)}`;
  if (firmware === 'uefi-pxe') {
    assert.ok(answered(67, 'offer', 'uefi-pxe', /./), `no proxy offer to edk2 PXE on port 67${context()}`);
    assert.ok(answered(4011, 'ack', 'uefi-pxe', /snponly\.efi$/), `no 4011 answer naming snponly.efi${context()}`);
    const tftp = result.view().transfers.filter((r) => r.protocol === 'tftp' && /snponly\.efi$/.test(r.path) && r.outcome === 'complete');
    // edk2 asks for blksize 1468 and windowsize 4 (after a tsize probe it ends itself).
    assert.ok(
      tftp.some((r) => r.bytesSent === r.bytesDue && r.blksize === 1468 && r.windowsize === 4),
      `no complete TFTP transfer of snponly.efi at blksize 1468, windowsize 4${context()}`,
    );
  }
  if (firmware === 'uefi-http') {
    assert.ok(
      answered(67, 'offer', 'uefi-http', new RegExp(`^http://${LAN.server.replaceAll('.', '\\.')}(:\\d+)?/\\S+\\.efi$`)),
      `no HTTPClient proxy offer with an EFI binary's URL${context()}`,
    );
  }
  // Every path ends in iPXE asking, and getting, the boot.ipxe URL.
  assert.ok(answered(67, 'offer', 'ipxe', /\/boot\.ipxe$/), `no proxy offer of boot.ipxe to iPXE${context()}`);
}

/** One line per boot for the test's output: total time and where it went. */
function report(t: TestContext, firmware: string, result: BootResult): void {
  const last = result.times[result.times.length - 1]?.ms ?? 0;
  const at = (re: RegExp) => result.times.find((s) => re.test(s.stage))?.ms;
  const iPXE = at(/no proxy offer for iPXE/);
  const kernel = at(/kernel not downloaded/);
  t.diagnostic(
    `${firmware}: marker after ${(last / 1000).toFixed(1)} s ` +
    `(boot.ipxe URL at ${((iPXE ?? 0) / 1000).toFixed(1)} s, kernel done at ${((kernel ?? 0) / 1000).toFixed(1)} s)`,
  );
  t.diagnostic(
    `${firmware}: iPXE DHCP took ${ipxeDhcpSeconds(result.view().serial)} (router advertisements ${ROUTER_ADVERTISEMENTS ? 'on' : 'off'})`,
  );
}

/** iPXE prints dots while configuring, one per second: their count is how long DHCP took. */
function ipxeDhcpSeconds(serial: string): string {
  const dots = /Configuring \(net0 [0-9a-f:]+\)(\.*)/.exec(serial)?.[1]?.length;
  return dots === undefined ? '?' : `~${dots} s`;
}

// ---------------------------------------------------------------------------------------------

test(
  'e2e-pxe: bootserve --pxe beside an address-only DHCP server boots UEFI PXE, UEFI HTTP Boot and BIOS to Linux on a virtual LAN',
  { timeout: 600_000 },
  async (t) => {
    const tools = findLabTools();
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
    const [dhcp, ra] = await startRouter(lab, tools, { routerAdvertisements: ROUTER_ADVERTISEMENTS });
    if (dhcp) logs.push({ name: "router's dnsmasq", child: dhcp });
    if (ra) logs.push({ name: 'router advertiser', child: ra });
    // The menu's default boots at once; a stalled transfer is cut after 2 s.
    const menu = ['--menu-timeout', '1s', '--menu-default', 'linux', '--stall-timeout', '2s'];
    const server = await startBootserve(REPO, folder.dir, ['--pxe', ...menu], {
      wrap: lab.exec('server'),
      host: LAN.server,
      port: HTTP_PORT,
    });
    t.after(() => server.stop());
    t.diagnostic(
      `lab ${lab.id}: bootserve --pxe --host ${LAN.server} --port ${HTTP_PORT}, ` +
      `router advertisements ${ROUTER_ADVERTISEMENTS ? 'on' : 'off'}`,
    );
    const env: Env = { lab, tools, server, folder, logs };

    await t.test(
      '1. UEFI PXE: edk2 PXE → proxyDHCP → 4011 → TFTP snponly.efi → iPXE → boot.ipxe → Linux',
      { timeout: 180_000 },
      async (st) => {
        const result = await boot(st, env, 'uefi-pxe', '52:54:00:18:00:01');
        report(st, 'UEFI PXE', result);
        assertServerSteps(env, 'uefi-pxe', '52:54:00:18:00:01', result);
        const tftp = result.view().transfers.filter((r) => r.protocol === 'tftp');
        st.diagnostic(
          `TFTP: ${tftp
            .map((r) => `${r.path} ${r.outcome} ${r.bytesSent}/${r.bytesDue} ` +
              `blksize=${r.blksize} windowsize=${r.windowsize}${r.error ? ` (${r.error})` : ''}`)
            .join('; ')}`,
        );
      },
    );

    await t.test(
      '2. UEFI HTTP Boot: edk2 HTTPClient → EFI binary over HTTP → iPXE → boot.ipxe → Linux',
      { timeout: 180_000 },
      async (st) => {
        const result = await boot(st, env, 'uefi-http', '52:54:00:18:00:02');
        report(st, 'UEFI HTTP Boot', result);
        assertServerSteps(env, 'uefi-http', '52:54:00:18:00:02', result);
        // edk2 asks HEAD then GET and resets the connection right after the body: both complete.
        const efi = result.view().transfers.filter((r) => r.path.endsWith('.efi'));
        assert.deepEqual(
          efi.map((r) => `${r.method} ${r.status} ${r.outcome}`),
          ['HEAD 200 complete', 'GET 200 complete'],
          'the EFI binary: HEAD then GET, both complete',
        );
      },
    );

    await t.test('3. BIOS: SeaBIOS iPXE ROM → proxyDHCP → boot.ipxe → Linux', { timeout: 120_000 }, async (st) => {
      const result = await boot(st, env, 'bios', '52:54:00:18:00:03');
      report(st, 'BIOS', result);
      assertServerSteps(env, 'bios', '52:54:00:18:00:03', result);
      for (const path of [KERNEL, INITRD, PAYLOAD])
        assert.deepEqual(
          result
            .view()
            .transfers.filter((r) => r.path === path)
            .map((r) => r.outcome),
          ['complete'],
          `${path}: one complete transfer`,
        );
    });

    await t.test(
      '4. BIOS, machine frozen mid-kernel: the stall guard cuts the transfer, the menu retries it, Linux boots, /-/machines shows it',
      { timeout: 180_000 },
      async (st) => {
        const mac = '52:54:00:18:00:04';
        let froze = false;
        // Slow the link to the guest so the kernel download lasts seconds, freeze the guest (SIGSTOP
        // on QEMU: its TCP stops acknowledging) once it is under way, and thaw it once bootserve has
        // logged the cut transfer. Thawed, iPXE finds its connection reset and the script retries.
        const freeze = async (vm: Vm, tap: string, view: () => BootView) => {
          env.lab.shape(tap, '16mbit');
          const deadline = Date.now() + 120_000;
          while (!/linux\/vmlinuz\.\.\./.test(view().serial)) {
            if (Date.now() > deadline || vm.child.exitCode !== null) return;
            await new Promise((r) => setTimeout(r, 100));
          }
          await new Promise((r) => setTimeout(r, 1500));
          if (fetched(view(), KERNEL)) return; // finished already: the assertions below say so
          vm.child.kill('SIGSTOP');
          froze = true;
          try {
            const cut = await server.waitFor((lines) => lines.some((r) => r.path === KERNEL && r.outcome !== 'complete'), 30_000);
            if (!cut) st.diagnostic('bootserve did not cut the frozen transfer within 30 s');
            // The operator's page at this moment, from the server's own host (127.0.0.1: --host names the LAN address).
            if (have(CHROMIUM)) page = await browseLab(env, `http://127.0.0.1:${HTTP_PORT}/-/`).catch((err: unknown) => err as Error);
          } finally {
            env.lab.unshape(tap);
            vm.child.kill('SIGCONT');
          }
        };
        const result = await boot(st, env, 'bios', mac, freeze);
        report(st, 'BIOS with a stall', result);
        assert.ok(froze, 'the kernel download finished before the guest could be frozen');
        const kernel = result.view().transfers.filter((r) => r.path === KERNEL);
        st.diagnostic(`kernel transfers: ${kernel.map((r) => `${r.outcome} ${r.bytesSent}/${r.bytesDue}`).join(', ')}`);
        assert.ok(
          kernel.length === 2 && ['stalled', 'client-gone'].includes(kernel[0]?.outcome ?? '') && kernel[1]?.outcome === 'complete',
          `kernel transfers: expected [stalled, complete], got ${JSON.stringify(kernel.map((r) => r.outcome))}`,
        );
        assert.match(result.view().serial, /bootserve: try 1 of 5 failed, trying again/, 'the boot script did not report a retry');
        // The operator's view shows the same: this machine's kernel steps, the stall among them.
        const machines = getInLab(env.lab, 'server', `http://${LAN.server}:${HTTP_PORT}/-/machines`);
        assert.equal(machines.status, 200, `/-/machines: ${machines.status} ${machines.body.slice(0, 500)}`);
        const me = (JSON.parse(machines.body) as MachineJson[]).find((m) => m.mac === mac);
        assert.ok(me, `/-/machines does not list ${mac}:\n${machines.body.slice(0, 2000)}`);
        const steps = me.steps.filter((step) => step.protocol === 'http' && step.file === KERNEL).map((step) => step.outcome);
        assert.deepEqual(
          steps,
          kernel.map((r) => r.outcome),
          `/-/machines: ${mac}'s kernel steps`,
        );
        assert.equal(me.lastError?.file, KERNEL, `/-/machines: ${mac}'s last error is the cut kernel transfer`);
      },
    );

  await t.test('5. the operator page in chromium, taken while machine 4 was frozen: four timelines, the cut kernel in red', async (st) => {
    if (!need(st, CHROMIUM, 'chromium')) return;
    if (page instanceof Error) throw page;
    assert.ok(page, 'the page was not loaded (machine 4 was never frozen)');
    st.diagnostic(`screenshot: ${page.screenshot}`);
    const dom = page.dom;
    assert.match(dom, /<main id="fleet" data-rendered="browser">/, 'the page script re-rendered from /-/status and /-/machines');
    const card = (mac: string) => new RegExp(`<article class="machine (\\w+)" data-mac="${mac}"[^>]*>(.*?)</article>`, 's').exec(dom);
    for (const mac of ['52:54:00:18:00:01', '52:54:00:18:00:02', '52:54:00:18:00:03']) {
      const m = card(mac);
      assert.equal(m?.[1], 'done', `${mac} booted: its card says ${m?.[1]}\n${m?.[2]?.slice(0, 3000)}`);
      // The BIOS guest's firmware is iPXE itself (QEMU's NIC ROM): it fetches no boot program.
      const stages = mac.endsWith('03') ? ['dhcp', 'script', 'kernel', 'initrd'] : ['dhcp', 'boot-program', 'script', 'kernel', 'initrd'];
      for (const stage of stages) {
        assert.match(m?.[2] ?? '', new RegExp(`class="step ok" data-stage="${stage}"`), `${mac}: ${stage} done`);
      }
    }
    assert.match(card('52:54:00:18:00:01')?.[2] ?? '', /data-stage="boot-program">.*?snponly\.efi.*?over TFTP · complete/s);
    assert.match(card('52:54:00:18:00:02')?.[2] ?? '', /data-stage="boot-program">.*?over HTTP · complete/s);
    const frozen = card('52:54:00:18:00:04');
    assert.equal(frozen?.[1], 'failed', `the frozen machine: ${frozen?.[2]?.slice(0, 3000)}`);
    assert.match(frozen?.[2] ?? '', /class="step failed" data-stage="kernel">.*?vmlinuz.*?class="reason">(stalled|client-gone)/s);
    assert.match(frozen?.[2] ?? '', /class="why">✗ kernel over HTTP <code>\/linux\/vmlinuz<\/code>: (stalled|client-gone)/);
  });
});

let page: Browsed | Error | undefined;

/** /-/ in headless chromium inside the server's namespace; the screenshot goes to ARTIFACTS. */
async function browseLab(env: Env, url: string): Promise<Browsed> {
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-e2e-page-'));
  try {
    const artifacts = artifactsDir(dir);
    mkdirSync(artifacts, { recursive: true });
    return await browse(url, dir, join(artifacts, 'operator-page.png'), { wrap: env.lab.exec('server'), height: 1000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

