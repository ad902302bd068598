// A DHCP server on the same host as `bootserve --pxe`, on the virtual LAN: dnsmasq as libvirt
// runs it (bound to its interface: --bind-interfaces, or --bind-dynamic as current libvirt does)
// in the server's namespace, handing out addresses and nothing about booting. Both start, in
// either order, and a PXE DISCOVER draws both answers: dnsmasq's address offer and bootserve's
// proxy offer (no address), which is how proxyDHCP works beside a LAN's DHCP server. dnsmasq on
// the wildcard address (its default) holds port 67 alone: bootserve stops with one line naming it.
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { MessageType, Opt } from '../../lib/dhcp/packet.js';
import { requestBytes } from '../helpers/dhcp.js';
import { createLab, LAN, removeStaleLabs, waitForText, type Lab } from '../helpers/lab.js';
import { dhcpProbe } from '../helpers/lanclient.js';
import { findExecutable } from '../helpers/qemu.js';
import { BIN, skipOrFail, type Child } from '../helpers/tools.js';

function missing(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (!findExecutable('ip')) return 'ip not found (apt-get install iproute2)';
  if (!findExecutable('dnsmasq')) return 'dnsmasq not found (apt-get install dnsmasq-base)';
  return undefined;
}

function folder(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'bootserve-dnsmasq-')));
  mkdirSync(join(dir, 'ipxe'));
  writeFileSync(join(dir, 'ipxe/snponly.efi'), 'efi');
  writeFileSync(join(dir, 'ipxe/undionly.kpxe'), 'kpxe');
  return dir;
}

/** dnsmasq in the server's namespace: addresses only. `bind`: how it binds, or '' for its default (wildcard). */
async function startDnsmasq(lab: Lab, bind: string): Promise<Child> {
  const args = [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0',
    '--interface=eth0',
    ...(bind ? [bind] : []),
    `--dhcp-range=${LAN.dhcpFirst},${LAN.dhcpLast},255.255.255.0,1h`,
    '--no-ping',
    `--dhcp-leasefile=${join(lab.dir, `leases${bind}`)}`,
    `--pid-file=${join(lab.dir, `pid${bind}`)}`,
    '--log-dhcp',
    '--log-facility=-',
  ];
  const child = lab.spawn('server', findExecutable('dnsmasq') as string, args);
  await waitForText(
    child,
    /DHCP, (sockets bound exclusively to interface eth0|IP range)/,
    10_000,
    `dnsmasq ${bind || '(wildcard)'} to start`,
  );
  return child;
}

async function withLab(t: TestContext): Promise<{ lab: Lab; dir: string } | undefined> {
  const why = missing();
  if (why) return void skipOrFail(t, why);
  removeStaleLabs();
  const lab = createLab();
  const dir = folder();
  t.after(async () => {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { lab, dir };
}

/** Both answer one DISCOVER: dnsmasq with an address, bootserve with the boot file and none. */
function assertBothAnswer(lab: Lab, xid: number): void {
  const replies = dhcpProbe(lab, 'router', requestBytes({ xid }), 3000).filter((r) => r.packet.xid === xid);
  const proxy = replies.filter((r) => r.packet.options.get(Opt.vendorClass)?.toString().startsWith('PXEClient'));
  const address = replies.filter((r) => r.packet.yiaddr !== '0.0.0.0');
  assert.equal(
    proxy.length >= 1,
    true,
    `bootserve's proxy offer; replies: ${JSON.stringify(replies.map((r) => [r.from, r.packet.yiaddr]))}`,
  );
  assert.equal(proxy[0]?.packet.yiaddr, '0.0.0.0');
  assert.equal(proxy[0]?.packet.options.get(Opt.messageType)?.[0], MessageType.offer);
  assert.equal(address.length >= 1, true, "dnsmasq's address offer");
  assert.equal(address[0]?.packet.options.get(Opt.vendorClass), undefined, 'dnsmasq says nothing about booting');
}

for (const bind of ['--bind-interfaces', '--bind-dynamic']) {
  test(`e2e-dnsmasq: dnsmasq ${bind} first, then bootserve --pxe on the same host: both answer`, { timeout: 60_000 }, async (t) => {
    const env = await withLab(t);
    if (!env) return;
    const { lab, dir } = env;
    await startDnsmasq(lab, bind);
    const server = lab.spawn('server', process.execPath, [BIN, dir, '--pxe', '--host', LAN.server, '--port', '8080', '--user', 'root']);
    await server.waitForLine(/iPXE: chain/, 20_000);
    assertBothAnswer(lab, 0xd0e50001);
  });
}

test('e2e-dnsmasq: bootserve --pxe first, then dnsmasq --bind-interfaces: both start and answer', { timeout: 60_000 }, async (t) => {
  const env = await withLab(t);
  if (!env) return;
  const { lab, dir } = env;
  const server = lab.spawn('server', process.execPath, [BIN, dir, '--pxe', '--host', LAN.server, '--port', '8080', '--user', 'root']);
  await server.waitForLine(/iPXE: chain/, 20_000);
  await startDnsmasq(lab, '--bind-interfaces');
  assertBothAnswer(lab, 0xd0e50002);
});

test('e2e-dnsmasq: dnsmasq on the wildcard address: bootserve --pxe stops with one line naming it', { timeout: 60_000 }, async (t) => {
  const env = await withLab(t);
  if (!env) return;
  const { lab, dir } = env;
  await startDnsmasq(lab, '');
  const server = lab.spawn('server', process.execPath, [BIN, dir, '--pxe', '--host', LAN.server, '--port', '8080', '--user', 'root']);
  assert.equal(await server.exited(20_000), 1);
  const err = server.stderr().trim().split('\n');
  assert.equal(err.length, 1, server.stderr());
  assert.match(err[0] as string, /^bootserve: proxyDHCP: UDP port 67 is already in use \(another DHCP server runs on this host: dnsmasq/);
});
