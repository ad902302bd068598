// A virtual LAN for booting real firmware against bootserve, built from network namespaces:
//
//   lan ns:    bridge br0, with one veth port to each namespace below and a tap per guest
//              (QEMU runs in this namespace and opens the taps)
//   router ns: eth0 198.18.0.1/24, dnsmasq as the LAN's ordinary DHCP server: addresses only,
//              no boot options; and a minimal IPv6 router advertiser (see startRouter)
//   server ns: eth0 198.18.0.2/24, where the boot server under test runs
//
// 198.18.0.0/24 is the block reserved for such benchmark labs (RFC 2544); it exists only
// inside these namespaces, which the lab creates and deletes itself. Names carry the pid of the
// process that made them, so a lab left behind by a killed run is found and removed by the next.
// Everything here needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assetsDir, findExecutable, spawnVm, type Vm } from './qemu.js';
import { eventually } from './eventually.js';
import { start, type Child } from './tools.js';

export const LAN = {
  router: '198.18.0.1',
  server: '198.18.0.2',
  prefixLength: 24,
  dhcpFirst: '198.18.0.100',
  dhcpLast: '198.18.0.199',
} as const;

const NAME_PREFIX = 'bsl-';
const ROLES = ['lan', 'router', 'server'] as const;
type Role = (typeof ROLES)[number];

// ---------------------------------------------------------------------------------------------
// Tools

export interface LabTools {
  ip: string;
  tc: string;
  dnsmasq: string;
  /** Sends the router advertisements (Node has no raw ICMPv6 sockets). */
  python3: string;
  qemu: string;
  ovmfCode: string;
  ovmfVars: string;
  /** Debian's iPXE binaries (undionly.kpxe, snponly.efi, ...). */
  ipxeDir: string;
  vmlinuz: string;
  busybox: string;
}

const OVMF_DIR = '/usr/share/OVMF';
const IPXE_DIR = '/usr/lib/ipxe';

/** Everything the lab needs, or a sentence saying what is missing and how to get it. */
export function findLabTools(): LabTools | string {
  if (process.platform !== 'linux') return 'the PXE lab needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the PXE lab needs root (it creates network namespaces)';
  const ip = findExecutable('ip');
  if (!ip) return 'ip not found (apt-get install iproute2)';
  const tc = findExecutable('tc');
  if (!tc) return 'tc not found (apt-get install iproute2)';
  const dnsmasq = findExecutable('dnsmasq');
  if (!dnsmasq) return 'dnsmasq not found (apt-get install dnsmasq-base)';
  const python3 = findExecutable('python3');
  if (!python3) return 'python3 not found (apt-get install python3)';
  const qemu = findExecutable('qemu-system-x86_64');
  if (!qemu) return 'qemu-system-x86_64 not found (apt-get install qemu-system-x86)';
  if (!existsSync('/usr/lib/ipxe/qemu/pxe-virtio.rom') && !existsSync('/usr/lib/ipxe/qemu/efi-virtio.rom'))
    return "QEMU's iPXE ROM not found (apt-get install ipxe-qemu)";
  const ovmfCode = join(OVMF_DIR, 'OVMF_CODE.fd');
  const ovmfVars = join(OVMF_DIR, 'OVMF_VARS.fd');
  if (!existsSync(ovmfCode) || !existsSync(ovmfVars)) return `${ovmfCode} or OVMF_VARS.fd not found (apt-get install ovmf)`;
  if (!existsSync(join(IPXE_DIR, 'snponly.efi')) || !existsSync(join(IPXE_DIR, 'undionly.kpxe')))
    return `${IPXE_DIR}/snponly.efi or undionly.kpxe not found (apt-get install ipxe)`;
  const assets = assetsDir();
  const vmlinuz = join(assets, 'vmlinuz');
  const busybox = join(assets, 'busybox');
  if (!existsSync(vmlinuz) || !existsSync(busybox)) return `kernel/busybox not in ${assets} (run scripts/e2e-netboot-assets.sh ${assets})`;
  return { ip, tc, dnsmasq, python3, qemu, ovmfCode, ovmfVars, ipxeDir: IPXE_DIR, vmlinuz, busybox };
}

// ---------------------------------------------------------------------------------------------
// Commands

/** Run a command to completion (bounded: 15 s); throw with its stderr when it fails. */
function run(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Like run, but a failure is only reported back (for cleanup, which must go on). */
function tryRun(cmd: string, args: readonly string[]): string | undefined {
  try {
    return run(cmd, args);
  } catch (err) {
    return (err as Error).message;
  }
}

/** Kill every process still running in namespace `ns` (SIGKILL: cleanup, not shutdown). */
function killAllIn(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 15_000 }).stdout ?? '';
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
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

/**
 * Delete labs whose creating process is gone (a run killed before its cleanup). Labs of live
 * processes (another test run at the same time) are left alone. Returns the names removed.
 */
export function removeStaleLabs(): string[] {
  const listing = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 15_000 }).stdout ?? '';
  const removed: string[] = [];
  for (const line of listing.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const owner = new RegExp(`^${NAME_PREFIX}(\\d+)-[0-9a-f]+-(${ROLES.join('|')})$`).exec(name);
    if (!owner || alive(Number(owner[1]))) continue;
    killAllIn(name);
    tryRun('ip', ['netns', 'del', name]);
    removed.push(name);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// The lab

export interface Lab {
  /** e.g. bsl-1234-a1b2c3: the prefix of its namespace names. */
  id: string;
  ns: Record<Role, string>;
  /** A temporary folder for logs, leases and firmware variable stores. */
  dir: string;
  /** The argv prefix that runs a command in namespace `role`. */
  exec(role: Role): string[];
  /** Start a long-running process in namespace `role` (stopped by close()). */
  spawn(role: Role, cmd: string, args: readonly string[]): Child;
  /** A new tap device on the bridge, for one guest NIC; returns its name. */
  addTap(): string;
  /** Limit what the bridge sends to a tap (so a download lasts long enough to interfere with). */
  shape(tap: string, rate: string): void;
  unshape(tap: string): void;
  /** Remember a VM so close() stops it. */
  track(vm: Vm): Vm;
  /** Stop everything started in the lab and delete its namespaces and folder. Idempotent. */
  close(): Promise<void>;
}

/** Build the LAN: three namespaces, the bridge, the two hosts with their addresses. */
export function createLab(): Lab {
  const id = `${NAME_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  const ns = { lan: `${id}-lan`, router: `${id}-router`, server: `${id}-server` };
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-lab-'));
  const children: Child[] = [];
  const vms: Vm[] = [];
  let taps = 0;
  let closed = false;

  const ipIn = (role: Role, ...args: string[]) => run('ip', ['-n', ns[role], ...args]);
  const exec = (role: Role) => ['ip', 'netns', 'exec', ns[role]];

  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(vms.map((vm) => vm.stop()));
    await Promise.all(children.map((c) => c.stop(2000)));
    for (const name of Object.values(ns)) {
      killAllIn(name);
      tryRun('ip', ['netns', 'del', name]);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (const role of ROLES) {
      run('ip', ['netns', 'add', ns[role]]);
      ipIn(role, 'link', 'set', 'lo', 'up');
    }
    // No STP, no forwarding delay: ports forward at once. No multicast snooping: IPv6 router
    // solicitations and advertisements are flooded like broadcasts.
    ipIn('lan', 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0');
    ipIn('lan', 'link', 'set', 'br0', 'up');
    for (const host of ['router', 'server'] as const) {
      const port = host === 'router' ? 'r0' : 's0';
      ipIn('lan', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[host]);
      ipIn('lan', 'link', 'set', port, 'master', 'br0', 'up');
      ipIn(host, 'addr', 'add', `${LAN[host]}/${LAN.prefixLength}`, 'dev', 'eth0');
      ipIn(host, 'link', 'set', 'eth0', 'up');
    }
  } catch (err) {
    void close();
    throw err;
  }

  return {
    id,
    ns,
    dir,
    exec,
    spawn: (role, cmd, args) => {
      const child = start(exec(role)[0] as string, [...exec(role).slice(1), cmd, ...args]);
      children.push(child);
      return child;
    },
    addTap: () => {
      const tap = `tap${taps++}`;
      ipIn('lan', 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
      ipIn('lan', 'link', 'set', tap, 'master', 'br0', 'up');
      return tap;
    },
    shape: (tap, rate) =>
      void run('ip', [
        'netns',
        'exec',
        ns.lan,
        'tc',
        'qdisc',
        'replace',
        'dev',
        tap,
        'root',
        'tbf',
        'rate',
        rate,
        'burst',
        '32kb',
        'latency',
        '400ms',
      ]),
    unshape: (tap) => void tryRun('ip', ['netns', 'exec', ns.lan, 'tc', 'qdisc', 'del', 'dev', tap, 'root']),
    track: (vm) => (vms.push(vm), vm),
    close,
  };
}

/**
 * One HTTP GET from inside namespace `role` (the test process itself cannot reach the lab):
 * a node child does it, bounded by 10 s. Status 0 when it could not connect.
 */
export function getInLab(lab: Lab, role: Role, url: string): { status: number; body: string } {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(8000) })` +
    `.then(async (r) => process.stdout.write(r.status + '\\n' + (await r.text()))` +
  `, (e) => process.stdout.write('0\\n' + e.message));`;
  const r = spawnSync(lab.exec(role)[0] as string, [...lab.exec(role).slice(1), process.execPath, '-e', script], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const out = r.stdout ?? '';
  const nl = out.indexOf('\n');
  return nl < 0 ? { status: 0, body: `${out}${r.stderr ?? ''}` } : { status: Number(out.slice(0, nl)), body: out.slice(nl + 1) };
}

// ---------------------------------------------------------------------------------------------
// The LAN's DHCP server

export interface RouterOptions {
  /** Answer IPv6 router solicitations (default true). Without, every iPXE waits ~16 s for them. */
  routerAdvertisements?: boolean;
}

/**
 * The smallest router advertiser: on every router solicitation, an RA to
 * all nodes with no flags, no prefix and router lifetime 0 ("no IPv6 router here, nothing to
 * configure"). That completes iPXE's IPv6 configuration at once instead of after its ~16 s
 * timeout. dnsmasq's --enable-ra cannot do this: it advertises only for an IPv6 prefix on the
 * interface, and the lab's only addresses are IPv4 (198.18.0.0/24) plus link-local IPv6.
 */
const RA_RESPONDER = `
import socket, struct, sys
index = socket.if_nametoindex(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
for option in (socket.IPV6_MULTICAST_HOPS, socket.IPV6_UNICAST_HOPS):
    s.setsockopt(socket.IPPROTO_IPV6, option, 255)  # RFC 4861: receivers drop RAs with less
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, 'ff02::2') + struct.pack('@I', index))
# type 134, code 0, checksum (the kernel fills it), hop limit 64, flags 0, lifetime 0, reachable 0, retrans 0
ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 0, 0, 0)
def advertise(why):
    try:
        s.sendto(ra, ('ff02::1', 0, 0, index))
        print('ra: sent (%s)' % why, flush=True)
    except OSError as e:  # e.g. the link-local address still tentative (DAD) just after link up
        print('ra: not sent (%s): %s' % (why, e), flush=True)
print('ra: ready', flush=True)
while True:
    data, source = s.recvfrom(1500)
    if data[:1] == b'\\x85':  # 133: router solicitation
        advertise('solicited by %s' % source[0])
`;

/**
 * dnsmasq in the router namespace as the LAN's ordinary DHCP server: addresses and a router,
 * nothing about booting; and, unless turned off, the router advertiser above.
 */
export async function startRouter(lab: Lab, tools: Pick<LabTools, 'dnsmasq' | 'python3'>, options: RouterOptions = {}): Promise<Child[]> {
  const args = [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0', // no DNS
    '--interface=eth0',
    '--bind-interfaces',
    `--dhcp-range=${LAN.dhcpFirst},${LAN.dhcpLast},255.255.255.0,1h`,
    // No ping before offering an address: it delays every offer by 3 s (6 s or more per boot).
    '--no-ping',
    `--dhcp-leasefile=${join(lab.dir, 'router.leases')}`,
    `--pid-file=${join(lab.dir, 'router.pid')}`,
    '--log-dhcp',
    '--log-facility=-',
  ];
  const dhcp = lab.spawn('router', tools.dnsmasq, args);
  await waitForText(dhcp, /DHCP, sockets bound exclusively to interface eth0/, 10_000, "the router's dnsmasq to start");
  if (options.routerAdvertisements === false) return [dhcp];
  const ra = lab.spawn('router', tools.python3, ['-c', RA_RESPONDER, 'eth0']);
  await waitForText(ra, /ra: ready/, 10_000, 'the router advertiser to start');
  return [dhcp, ra];
}

/** Wait for a line on a child's stdout or stderr (dnsmasq logs to stderr). */
export async function waitForText(child: Child, re: RegExp, ms: number, what: string): Promise<void> {
  await eventually(
    () => {
      if (re.test(child.stderr()) || child.lines.some((l) => re.test(l))) return;
      const exited = child.proc.exitCode !== null ? ` (it exited ${child.proc.exitCode})` : '';
      throw new Error(`timed out waiting for ${what}${exited}:\n${child.stderr().slice(-2000)}`);
    },
    { timeoutMs: ms, intervalMs: 50 },
  );
}

// ---------------------------------------------------------------------------------------------
// Guests

export type Firmware = 'bios' | 'uefi-pxe' | 'uefi-http';

export interface GuestOptions {
  firmware: Firmware;
  mac: string;
  /** A tap from lab.addTap(). */
  tap: string;
}

/**
 * A QEMU guest (TCG) on a tap of the bridge, booting from its NIC:
 * - bios: SeaBIOS runs QEMU's own iPXE option ROM for the virtio NIC;
 * - uefi-pxe: OVMF with the NIC's option ROM removed (romfile=), so edk2's PXE client runs;
 * - uefi-http: OVMF with PXE off, so its HTTP Boot client runs.
 * UEFI guests get a copy of the keyless variable store (no Secure Boot) per run, and no IPv6
 * boot attempts (they would only add minutes to a failing boot).
 */
export function startGuest(lab: Lab, tools: LabTools, options: GuestOptions): Vm {
  const { firmware, mac, tap } = options;
  // OVMF itself takes a good part of 256 MiB.
  const args = [
    '-accel',
    'tcg',
    '-m',
    firmware === 'bios' ? '256' : '512',
    '-smp',
    '1',
    '-nographic',
    '-no-reboot',
    '-netdev',
    `tap,id=n0,ifname=${tap},script=no,downscript=no`,
  ];
  if (firmware === 'bios') {
    args.push('-machine', 'pc', '-boot', 'order=n', '-device', `virtio-net-pci,netdev=n0,mac=${mac}`);
  } else {
    const vars = join(lab.dir, `OVMF_VARS-${mac.replaceAll(':', '')}.fd`);
    copyFileSync(tools.ovmfVars, vars);
    args.push(
      '-machine', 'q35',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${tools.ovmfCode}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=no',
      ...(firmware === 'uefi-http' ? ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no'] : []),
      // bootindex puts the NIC before the empty DVD drive q35 has.
      '-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=,bootindex=1`,
    );
  }
  return lab.track(spawnVm([...lab.exec('lan'), tools.qemu, ...args]));
}

// ---------------------------------------------------------------------------------------------
// Secure Boot guests (test/e2e/secureboot.test.ts)

export interface SecureBootTools {
  ip: string;
  dnsmasq: string;
  python3: string;
  qemu: string;
  /** OVMF built with Secure Boot (SMM) and a variable store with Microsoft's keys, Secure Boot on. */
  ovmfCode: string;
  ovmfVars: string;
  /** ARM64: absent when qemu-system-aarch64 or AAVMF is missing. */
  arm64?: { qemu: string; code: string; vars: string } | undefined;
  /** scripts/secureboot-assets.sh's folder: root/ (the packages' tree), vmlinuz-*, busybox-*. */
  assets: string;
}

/** Where scripts/secureboot-assets.sh leaves its files (the same default as the script). */
export function secureBootAssetsDir(): string {
  return (
    process.env.BOOTSERVE_E2E_SECUREBOOT_ASSETS ||
    join(process.env.XDG_CACHE_HOME || join(process.env.HOME || tmpdir(), '.cache'), 'bootserve-ci', 'secureboot')
  );
}

/** Everything the Secure Boot lab needs, or a sentence saying what is missing and how to get it. */
export function findSecureBootTools(): SecureBootTools | string {
  if (process.platform !== 'linux') return 'the PXE lab needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the PXE lab needs root (it creates network namespaces)';
  const ip = findExecutable('ip');
  if (!ip) return 'ip not found (apt-get install iproute2)';
  const dnsmasq = findExecutable('dnsmasq');
  if (!dnsmasq) return 'dnsmasq not found (apt-get install dnsmasq-base)';
  const python3 = findExecutable('python3');
  if (!python3) return 'python3 not found (apt-get install python3)';
  const qemu = findExecutable('qemu-system-x86_64');
  if (!qemu) return 'qemu-system-x86_64 not found (apt-get install qemu-system-x86)';
  const ovmfCode = join(OVMF_DIR, 'OVMF_CODE_4M.secboot.fd');
  const ovmfVars = join(OVMF_DIR, 'OVMF_VARS_4M.ms.fd');
  if (!existsSync(ovmfCode) || !existsSync(ovmfVars)) return `${ovmfCode} or OVMF_VARS_4M.ms.fd not found (apt-get install ovmf)`;
  if (!existsSync(join(IPXE_DIR, 'snponly.efi')))
    return `${IPXE_DIR}/snponly.efi not found (apt-get install ipxe): the negative control offers it`;
  const assets = secureBootAssetsDir();
  for (const name of ['vmlinuz-amd64', 'busybox-amd64', 'root/usr/lib/shim/shimx64.efi.signed']) {
    if (!existsSync(join(assets, name))) return `${name} not in ${assets} (run scripts/secureboot-assets.sh ${assets})`;
  }
  const qemuArm = findExecutable('qemu-system-aarch64');
  const code = '/usr/share/AAVMF/AAVMF_CODE.ms.fd';
  const vars = '/usr/share/AAVMF/AAVMF_VARS.ms.fd';
  const arm64 =
    qemuArm && existsSync(code) && existsSync(vars) && existsSync(join(assets, 'vmlinuz-arm64'))
      ? { qemu: qemuArm, code, vars }
      : undefined;
  return { ip, dnsmasq, python3, qemu, ovmfCode, ovmfVars, arm64, assets };
}

/** Why the ARM64 half cannot run, or undefined. */
export function arm64Missing(tools: SecureBootTools): string | undefined {
  if (tools.arm64) return undefined;
  if (!findExecutable('qemu-system-aarch64')) return 'qemu-system-aarch64 not found (apt-get install qemu-system-arm)';
  if (!existsSync('/usr/share/AAVMF/AAVMF_VARS.ms.fd')) return 'AAVMF not found (apt-get install qemu-efi-aarch64)';
  return `vmlinuz-arm64 not in ${tools.assets} (run scripts/secureboot-assets.sh)`;
}

export interface SecureGuestOptions {
  arch: 'x64' | 'arm64';
  method: 'pxe' | 'http';
  mac: string;
  tap: string;
}

/**
 * A UEFI guest with Secure Boot enforced, booting from its NIC with the firmware's own network
 * stack (romfile= keeps QEMU's unsigned iPXE ROM out):
 * - x64: q35 with SMM, OVMF_CODE_4M.secboot.fd on secure pflash, a fresh OVMF_VARS_4M.ms.fd;
 * - arm64: virt/cortex-a57, AAVMF_CODE.ms.fd with a fresh AAVMF_VARS.ms.fd.
 * `http` turns the firmware's PXE off, leaving HTTP Boot. virtio-rng: newer edk2 finds no boot
 * option without an RNG (and the network stack wants entropy).
 */
export function startSecureGuest(lab: Lab, tools: SecureBootTools, options: SecureGuestOptions): Vm {
  const { arch, method, mac, tap } = options;
  const vars = join(lab.dir, `VARS-${mac.replaceAll(':', '')}.fd`);
  const nic = [
    '-netdev',
    `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    '-device',
    `virtio-net-pci,netdev=n0,mac=${mac},romfile=,bootindex=1`,
    '-device',
    'virtio-rng-pci',
  ];
  const fwCfg = [
    '-fw_cfg',
    'name=opt/org.tianocore/IPv6PXESupport,string=no',
    ...(method === 'http' ? ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no'] : []),
  ];
  const common = ['-accel', 'tcg', '-m', '512', '-smp', '1', '-nographic', '-no-reboot'];
  if (arch === 'x64') {
    copyFileSync(tools.ovmfVars, vars);
    const args = [
      ...common,
      '-machine', 'q35,smm=on',
      '-global', 'driver=cfi.pflash01,property=secure,value=on',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${tools.ovmfCode}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      ...fwCfg,
      ...nic,
    ];
    return lab.track(spawnVm([...lab.exec('lan'), tools.qemu, ...args]));
  }
  if (!tools.arm64) throw new Error('no ARM64 tools');
  copyFileSync(tools.arm64.vars, vars);
  const args = [
    ...common,
    '-machine', 'virt',
    '-cpu', 'cortex-a57',
    '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${tools.arm64.code}`,
    '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
    ...fwCfg,
    ...nic,
  ];
  return lab.track(spawnVm([...lab.exec('lan'), tools.arm64.qemu, ...args]));
}
