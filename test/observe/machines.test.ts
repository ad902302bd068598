// The operator's list of machines, built from the records every service logs. Pure.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { adminReply } from '../../lib/admin/pages.js';
import type { DhcpRecord, HttpRecord, TftpRecord } from '../../lib/observe/log.js';
import { Machines } from '../../lib/observe/machines.js';
import { Transfers } from '../../lib/observe/transfers.js';

let clock = Date.parse('2026-11-29T10:00:00Z');
const time = () => new Date((clock += 1000)).toISOString();
const dhcp = (r: Partial<DhcpRecord>): DhcpRecord => ({
  protocol: 'dhcp',
  time: time(),
  client: '0.0.0.0',
  mac: '52:54:00:12:34:56',
  port: 67,
  message: 'DISCOVER',
  xid: '1',
  arch: 7,
  answer: 'offer',
  kind: 'uefi-pxe',
  ...r,
});
const tftp = (r: Partial<TftpRecord>): TftpRecord => ({
  protocol: 'tftp',
  time: time(),
  client: '198.18.0.10',
  path: 'ipxe/snponly.efi',
  mode: 'octet',
  bytesSent: 100,
  bytesDue: 100,
  blksize: 1468,
  windowsize: 4,
  retransmits: 0,
  durationMs: 5,
  outcome: 'complete',
  ...r,
});
const http = (r: Partial<HttpRecord>): HttpRecord => ({
  protocol: 'http',
  time: time(),
  client: '198.18.0.10',
  method: 'GET',
  path: '/boot.ipxe',
  status: 200,
  bytesSent: 10,
  bytesDue: 10,
  durationMs: 1,
  outcome: 'complete',
  userAgent: 'iPXE/1.0',
  ...r,
});

test('a UEFI PXE boot, step by step: offer, 4011, TFTP (the size probe is no error), HTTP, a stalled kernel', () => {
  const m = new Machines();
  m.observe(dhcp({}));
  m.observe(dhcp({ client: '198.18.0.10', port: 4011, message: 'REQUEST', answer: 'ack', bootFile: 'ipxe/snponly.efi' }));
  m.observe(tftp({ bytesSent: 0, outcome: 'client-gone', error: 'ERROR 8: size probe' }));
  m.observe(tftp({}));
  m.observe(http({}));
  m.observe(http({ path: '/debian/vmlinuz', outcome: 'stalled', bytesSent: 5 }));
  const [machine, ...others] = m.list();
  assert.equal(others.length, 0);
  assert.equal(machine?.mac, '52:54:00:12:34:56');
  assert.equal(machine?.address, '198.18.0.10');
  assert.equal(machine?.firmware, 'uefi-pxe');
  assert.equal(machine?.arch, 7);
  assert.deepEqual(
    machine?.steps.map((s) => `${s.protocol} ${s.step} ${s.file ?? ''} ${s.outcome}`),
    [
      'dhcp proxy offer sent  answered',
      'dhcp boot file sent on 4011 ipxe/snponly.efi answered',
      'tftp boot program over TFTP ipxe/snponly.efi client-gone',
      'tftp boot program over TFTP ipxe/snponly.efi complete',
      'http boot script over HTTP /boot.ipxe complete',
      'http kernel over HTTP /debian/vmlinuz stalled',
    ],
  );
  assert.deepEqual(machine?.steps.map((s) => s.result), ['ok', 'ok', 'skipped', 'ok', 'ok', 'failed']);
  assert.equal(machine?.state, 'failed');
  assert.deepEqual(Object.keys(machine?.timeline ?? {}), ['dhcp', 'boot-program', 'script', 'kernel']);
  assert.equal(machine?.timeline['boot-program']?.outcome, 'complete', 'the size probe before it is not what the column shows');
  assert.equal(machine?.lastError?.file, '/debian/vmlinuz');
  assert.equal(machine?.lastError?.outcome, 'stalled');
});

test('an iPXE that names itself in machines/<mac>.ipxe joins what its address did before', () => {
  const m = new Machines();
  m.observe(http({ client: '198.18.0.20' }));
  assert.equal(m.list()[0]?.mac, null, 'listed by address until the MAC is known');
  m.observe(http({ client: '198.18.0.20', path: '/machines/52-54-00-aa-bb-cc.ipxe', status: 404, outcome: 'complete' }));
  m.observe(
    tftp({ client: '198.18.0.20', path: 'missing.efi', outcome: 'refused', error: 'ERROR 1: file not found', bytesSent: 0, bytesDue: 0 }),
  );
  const list = m.list();
  assert.equal(list.length, 1);
  assert.equal(list[0]?.mac, '52:54:00:aa:bb:cc');
  assert.equal(list[0]?.address, '198.18.0.20');
  assert.equal(list[0]?.steps.length, 3);
  assert.equal(
    list[0]?.lastError?.outcome,
    'refused: ERROR 1: file not found',
    'a missing machine script is not an error; a TFTP refusal is',
  );
});

test('ignored DHCP packets make no machine; the list is bounded, newest first', () => {
  const m = new Machines(10);
  m.observe(dhcp({ answer: 'ignored', reason: 'not-pxe' }));
  assert.equal(m.list().length, 0);
  for (let i = 0; i < 25; i++) m.observe(dhcp({ mac: `52:54:00:00:00:${String(i).padStart(2, '0')}` }));
  assert.equal(m.list().length, 10);
  assert.equal(m.list()[0]?.mac, '52:54:00:00:00:24');
  for (let i = 0; i < 30; i++) m.observe(http({ client: '198.18.0.99' }));
  assert.equal(m.list()[0]?.steps.length, 20);
});

test('/-/machines answers the list as JSON; the /-/ page has the table', () => {
  const machines = new Machines();
  machines.observe(dhcp({}));
  const state = { version: 't', root: '/srv', settings: {}, transfers: new Transfers(), machines, ready: () => true, services: () => [] };
  const json = JSON.parse((adminReply({ url: '/-/machines' } as IncomingMessage, state).parts[0] as Buffer).toString());
  assert.equal(json[0].mac, '52:54:00:12:34:56');
  assert.equal(json[0].firmware, 'uefi-pxe');
  const page = (adminReply({ url: '/-/' } as IncomingMessage, state).parts[0] as Buffer).toString();
  assert.match(page, /<h2>Machines<\/h2>/);
  assert.match(page, /52:54:00:12:34:56/);
});

test('the firmware that started the boot stays when iPXE asks next; a relay is not the machine; long names are cut', () => {
  const m = new Machines();
  m.observe(dhcp({ client: '10.0.0.1' })); // a DISCOVER through a relay
  m.observe(dhcp({ mac: '52:54:00:00:00:02', client: '10.0.0.1' }));
  assert.ok(m.list().every((x) => x.address === null), "the relay's address is nobody's");
  m.observe(dhcp({ kind: 'ipxe', arch: 7, bootFile: 'http://198.18.0.2:8080/boot.ipxe' }));
  const first = m.list().find((x) => x.mac === '52:54:00:12:34:56');
  assert.deepEqual([first?.firmware, first?.arch], ['uefi-pxe', 7]);
  m.observe(http({ client: '198.18.0.77', path: `/${'x'.repeat(15_000)}`, status: 404 }));
  const long = m.list()[0]?.steps[0]?.file ?? '';
  assert.ok(long.length <= 257, `${long.length} characters kept`);
});

test('a PXE client that got no answer is listed with the reason; DHCP traffic of no netboot client is not', () => {
  const m = new Machines();
  for (const reason of ['not-pxe', 'not-a-request', 'wrong-message-type', 'malformed'])
    m.observe(dhcp({ mac: '52:54:00:00:00:99', answer: 'ignored', kind: undefined, reason, detail: 'x' }));
  assert.equal(m.list().length, 0);
  m.observe(dhcp({ arch: 11, answer: 'ignored', kind: undefined, reason: 'no-boot-file', detail: 'no iPXE binary for efi-arm64' }));
  m.observe(
    dhcp({
      mac: '52:54:00:00:00:02',
      arch: 16,
      answer: 'ignored',
      kind: undefined,
      reason: 'rate-limited-client',
      detail: 'too many replies to 52:54:00:00:00:02',
    }),
  );
  m.observe(dhcp({ mac: '52:54:00:00:00:03', answer: 'ignored', kind: undefined, reason: 'unsupported-arch', detail: 'option 93 = 0063' }));
  const [unsupported, limited, arm] = m.list();
  assert.equal(arm?.mac, '52:54:00:12:34:56');
  assert.equal(arm?.arch, 11);
  assert.equal(arm?.state, 'failed');
  assert.equal(arm?.lastError?.step, 'DISCOVER not answered');
  assert.equal(arm?.lastError?.outcome, 'no-boot-file: no iPXE binary for efi-arm64');
  assert.equal(arm?.timeline.dhcp?.result, 'failed');
  assert.match(limited?.lastError?.outcome ?? '', /^rate-limited-client/);
  assert.match(unsupported?.lastError?.outcome ?? '', /^unsupported-arch/);
});

test('step names say what the file is; browser noise is nobody; a directory listing is no file', () => {
  const m = new Machines();
  m.observe(tftp({ path: 'debian/vmlinuz' }));
  m.observe(tftp({ path: 'debian/initrd.gz' }));
  m.observe(http({ path: '/debian/cmdline' }));
  m.observe(http({ path: '/debian/' }));
  m.observe(http({ path: '/favicon.ico', status: 404 }));
  m.observe(http({ path: '/robots.txt', status: 404 }));
  m.observe(http({ path: '/debian/initrd.gz', method: 'HEAD' }));
  const [machine] = m.list();
  assert.deepEqual(
    machine?.steps.map((s) => s.step),
    ['kernel over TFTP', 'initrd over TFTP', 'cmdline over HTTP', 'directory listing', 'initrd over HTTP (HEAD)'],
  );
  assert.equal(machine?.lastError, null, "a browser's favicon.ico is not the machine's error");
});

test('where a boot stands: booting, waiting when quiet, done once kernel and initrd came, a new boot starts at its DISCOVER', () => {
  const m = new Machines();
  const start = clock;
  m.observe(dhcp({}));
  m.observe(dhcp({ client: '198.18.0.10', port: 4011, message: 'REQUEST', answer: 'ack', bootFile: 'ipxe/snponly.efi' }));
  m.observe(tftp({}));
  const seen = clock;
  assert.equal(m.list(seen + 1000)[0]?.state, 'booting');
  assert.equal(m.list(seen + 31_000)[0]?.state, 'waiting');
  m.observe(http({ path: '/debian/vmlinuz' }));
  assert.equal(m.list(clock + 1000)[0]?.state, 'booting');
  assert.equal(m.list(clock + 11_000)[0]?.state, 'done', 'a kernel and nothing since: a boot without an initrd');
  m.observe(dhcp({ kind: 'ipxe', bootFile: 'http://198.18.0.2/boot.ipxe' }));
  m.observe(http({ path: '/debian/initrd.gz' }));
  const done = m.list(clock + 1000)[0];
  assert.equal(done?.state, 'done');
  assert.equal(done?.bootStartedAt, new Date(start + 1000).toISOString(), "iPXE's own DHCP continues the boot");
  // The machine reboots: a new DISCOVER, a new timeline.
  m.observe(dhcp({}));
  const again = m.list(clock + 1000)[0];
  assert.equal(again?.state, 'booting');
  assert.deepEqual(Object.keys(again?.timeline ?? {}), ['dhcp']);
  assert.equal(again?.steps.length, 7, 'the history stays');
});

test("a NIC whose own firmware is iPXE (QEMU's ROM): its DHCP starts the boot and fills the DHCP column", () => {
  const m = new Machines();
  m.observe(dhcp({ kind: 'ipxe', arch: 0, bootFile: 'http://198.18.0.2:8080/boot.ipxe' }));
  m.observe(
    dhcp({
      client: '198.18.0.10',
      kind: 'ipxe',
      arch: 0,
      port: 4011,
      message: 'REQUEST',
      answer: 'ack',
      bootFile: 'http://198.18.0.2:8080/boot.ipxe',
    }),
  );
  m.observe(http({}));
  const [machine] = m.list();
  assert.equal(machine?.firmware, 'ipxe');
  assert.equal(machine?.timeline.dhcp?.step, 'iPXE: boot file sent on 4011');
  m.observe(dhcp({ kind: 'ipxe', arch: 0 }));
  assert.deepEqual(Object.keys(m.list()[0]?.timeline ?? {}), ['dhcp'], 'its next DISCOVER is a new boot');
});

test('the boot path the firmware was sent down is named: the signed chain, not the iPXE it never ran', () => {
  const m = new Machines();
  m.observe(dhcp({ mac: '52:54:00:00:00:aa', arch: 11, bootFile: 'shimaa64.efi', bootPath: 'signed' }));
  assert.equal(m.list()[0]?.bootPath, 'signed');
  m.observe(dhcp({ mac: '52:54:00:00:00:bb', arch: 7, bootFile: 'ipxe/snponly.efi', bootPath: 'ipxe' }));
  assert.equal(m.list()[0]?.bootPath, 'ipxe');
});
