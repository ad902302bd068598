// The operator's list of machines, built from the records every service logs. Pure.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { adminReply } from '../lib/admin/pages.js';
import type { DhcpRecord, HttpRecord, TftpRecord } from '../lib/observe/log.js';
import { Machines } from '../lib/observe/machines.js';
import { Transfers } from '../lib/observe/transfers.js';

let clock = Date.parse('2026-11-29T10:00:00Z');
const time = () => new Date((clock += 1000)).toISOString();
const dhcp = (r: Partial<DhcpRecord>): DhcpRecord => ({ protocol: 'dhcp', time: time(), client: '0.0.0.0', mac: '52:54:00:12:34:56', port: 67, message: 'DISCOVER', xid: '1', arch: 7, answer: 'offer', kind: 'uefi-pxe', ...r });
const tftp = (r: Partial<TftpRecord>): TftpRecord => ({ protocol: 'tftp', time: time(), client: '198.18.0.10', path: 'ipxe/snponly.efi', mode: 'octet', bytesSent: 100, bytesDue: 100, blksize: 1468, windowsize: 4, retransmits: 0, durationMs: 5, outcome: 'complete', ...r });
const http = (r: Partial<HttpRecord>): HttpRecord => ({ protocol: 'http', time: time(), client: '198.18.0.10', method: 'GET', path: '/boot.ipxe', status: 200, bytesSent: 10, bytesDue: 10, durationMs: 1, outcome: 'complete', userAgent: 'iPXE/1.0', ...r });

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
      'http GET boot script /boot.ipxe complete',
      'http GET file /debian/vmlinuz stalled',
    ],
  );
  assert.equal(machine?.lastError?.file, '/debian/vmlinuz');
  assert.equal(machine?.lastError?.outcome, 'stalled');
});

test('an iPXE that names itself in machines/<mac>.ipxe joins what its address did before', () => {
  const m = new Machines();
  m.observe(http({ client: '198.18.0.20' }));
  assert.equal(m.list()[0]?.mac, null, 'listed by address until the MAC is known');
  m.observe(http({ client: '198.18.0.20', path: '/machines/52-54-00-aa-bb-cc.ipxe', status: 404, outcome: 'complete' }));
  m.observe(tftp({ client: '198.18.0.20', path: 'missing.efi', outcome: 'refused', error: 'ERROR 1: file not found', bytesSent: 0, bytesDue: 0 }));
  const list = m.list();
  assert.equal(list.length, 1);
  assert.equal(list[0]?.mac, '52:54:00:aa:bb:cc');
  assert.equal(list[0]?.address, '198.18.0.20');
  assert.equal(list[0]?.steps.length, 3);
  assert.equal(list[0]?.lastError?.outcome, 'refused: ERROR 1: file not found', 'a missing machine script is not an error; a TFTP refusal is');
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
