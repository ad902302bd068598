// Least privilege, for real: `bootserve --pxe` started as root in a network namespace of the
// virtual LAN binds UDP 67, 69, 4011 and TCP 80, then runs as nobody (or --user NAME) with no
// supplementary groups, per /proc/PID/status; and from another namespace proxyDHCP still
// answers, TFTP still sends (from a per-transfer port opened after the drop), HTTP still
// serves files and the generated menu. Also: a folder nobody cannot read is refused at start.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { MessageType, Opt } from '../../lib/dhcp/packet.js';
import { requestBytes } from '../helpers/dhcp.js';
import { createLab, getInLab, LAN, removeStaleLabs, type Lab } from '../helpers/lab.js';
import { dhcpProbe, tftpGet } from '../helpers/lanclient.js';
import { findExecutable } from '../helpers/qemu.js';
import { BIN, cannotRunAsNobody, sha256, skipOrFail } from '../helpers/tools.js';

/**
 * A process that became nobody cannot write coverage data into the checkout (under c8 it would
 * say so on stderr at exit): it runs without. env(1) execs node, so the pid stays the same.
 */
const NO_COVERAGE = ['-u', 'NODE_V8_COVERAGE', process.execPath];

/** Why the namespace tests cannot run here, or undefined. */
function missing(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, ports below 1024)';
  if (!findExecutable('ip')) return 'ip not found (apt-get install iproute2)';
  return cannotRunAsNobody();
}

/** A served folder everybody may read, with its own iPXE binaries (no ipxe package needed). */
function folder(): { dir: string; efi: Buffer } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'bootserve-priv-')));
  const efi = randomBytes(40_000);
  mkdirSync(join(dir, 'ipxe'));
  writeFileSync(join(dir, 'ipxe/snponly.efi'), efi);
  writeFileSync(join(dir, 'ipxe/undionly.kpxe'), randomBytes(1000));
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  writeFileSync(join(dir, 'shell.ipxe'), '#!ipxe\nshell\n');
  for (const p of ['', 'ipxe']) chmodSync(join(dir, p), 0o755);
  for (const p of ['ipxe/snponly.efi', 'ipxe/undionly.kpxe', 'hello.txt', 'shell.ipxe']) chmodSync(join(dir, p), 0o644);
  return { dir, efi };
}

function status(pid: number): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(\w+):\s*(.*)$/.exec(line);
    if (m) fields[m[1] as string] = (m[2] as string).trim();
  }
  return fields;
}

async function withLab(t: TestContext): Promise<Lab | undefined> {
  const why = missing();
  if (why) return void skipOrFail(t, why);
  removeStaleLabs();
  const lab = createLab();
  t.after(() => lab.close());
  return lab;
}

test(
  'e2e-privileges: as root, --pxe binds its ports, drops to nobody, and DHCP, TFTP and HTTP still answer',
  { timeout: 60_000 },
  async (t) => {
    const lab = await withLab(t);
    if (!lab) return;
    const { dir, efi } = folder();
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const server = lab.spawn('server', 'env', [
      ...NO_COVERAGE,
      BIN,
      dir,
      '--pxe',
      '--host',
      LAN.server,
      '--port',
      '80',
      '--shutdown-grace',
      '1s',
    ]);
    const banner = await server.waitForLine(/iPXE: chain/, 20_000);
    assert.ok(banner);
    assert.ok(
      server.lines.some((l) =>
        /running as nobody \(uid 65534, gid 65534, no supplementary groups\) after binding its ports \(started as root/.test(l),
      ),
      server.lines.join('\n'),
    );

  const s = status(server.proc.pid as number);
  assert.deepEqual(s.Uid?.split(/\s+/), ['65534', '65534', '65534', '65534']);
  assert.deepEqual(s.Gid?.split(/\s+/), ['65534', '65534', '65534', '65534']);
  assert.equal(s.Groups ?? '', '');
  assert.equal(s.CapEff, '0000000000000000', 'no capability left');

  // proxyDHCP: an edk2 x64 DISCOVER from the router's namespace gets the proxy offer.
  const replies = dhcpProbe(lab, 'router', requestBytes({ xid: 0x5eed0001 }), 2500).filter((r) => r.packet.xid === 0x5eed0001);
  const offer = replies.find((r) => r.from === LAN.server);
  assert.ok(offer, `a proxy offer from ${LAN.server}; got ${JSON.stringify(replies.map((r) => r.from))}`);
  assert.equal(offer.packet.options.get(Opt.messageType)?.[0], MessageType.offer);
  assert.equal(offer.packet.siaddr, LAN.server);

  // TFTP: a lockstep download, from a port bound after the drop.
  const got = tftpGet(lab, 'router', LAN.server, 'ipxe/snponly.efi');
  assert.equal(sha256(got.data), sha256(efi));
  assert.notEqual(got.port, 69);

  // HTTP on port 80: a file, and the generated menu (its module is loaded after the drop).
  assert.deepEqual(getInLab(lab, 'router', `http://${LAN.server}/hello.txt`), { status: 200, body: 'hello\n' });
  const menu = getInLab(lab, 'router', `http://${LAN.server}/boot.ipxe`);
  assert.equal(menu.status, 200);
  assert.match(menu.body, /^item shell\.ipxe /m);
  await server.stop();
});

test('e2e-privileges: --user NAME runs as that user; a folder it cannot read is refused at start', { timeout: 60_000 }, async (t) => {
  const lab = await withLab(t);
  if (!lab) return;
  const { dir } = folder();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // daemon (uid 1) exists on every Debian; its group is daemon (1).
  const server = lab.spawn('server', 'env', [...NO_COVERAGE, BIN, dir, '--tftp', '--host', LAN.server, '--port', '80', '--user', 'daemon']);
  await server.waitForLine(/iPXE: chain/, 20_000);
  assert.deepEqual(status(server.proc.pid as number).Uid?.split(/\s+/), ['1', '1', '1', '1']);
  assert.equal(getInLab(lab, 'router', `http://${LAN.server}/hello.txt`).status, 200);
  await server.stop();

  // The default drop gives way to a folder nobody cannot read (lib/privileges.ts); an explicit
  // --user does not: refused.
  chmodSync(dir, 0o700);
  const refused = lab.spawn('server', 'env', [
    ...NO_COVERAGE,
    BIN,
    dir,
    '--tftp',
    '--host',
    LAN.server,
    '--port',
    '80',
    '--user',
    'nobody',
  ]);
  assert.equal(await refused.exited(20_000), 1);
  const err = refused.stderr().trim().split('\n');
  assert.equal(err.length, 1, refused.stderr());
  assert.match(err[0] as string, new RegExp(`^bootserve: nobody cannot read ${dir} \\(EACCES\\): make it readable \\(chmod -R o\\+rX`));
});
