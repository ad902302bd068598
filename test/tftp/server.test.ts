// The TFTP service over real sockets on 127.0.0.1, driven by a raw node:dgram client.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { statusOf } from '../../lib/admin/pages.js';
import { renderLines } from '../../lib/observe/live.js';
import type { TftpRecord } from '../../lib/observe/log.js';
import { Transfers } from '../../lib/observe/transfers.js';
import { encodeAck, encodeError, encodeRequest } from '../../lib/tftp/packet.js';
import { createTftpService } from '../../lib/tftp/server.js';
import { eventually } from '../helpers/eventually.js';
import { tempRoot } from '../helpers/temp.js';
import { descriptorsUnder, download, openFds, RawClient, startTftp } from '../helpers/tftp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a plain request (no options) gets DATA 1 from a new port, 512-byte blocks, logged complete', async (t) => {
  const body = randomBytes(5000);
  const s = await startTftp({ files: { 'undionly.kpxe': body } });
  t.after(() => s.close());
  const logged = s.nextLog('undionly.kpxe');
  const got = await download(s.port, 'undionly.kpxe');
  assert.equal(sha(got.data), sha(body));
  assert.equal(got.oack, undefined);
  assert.notEqual(got.tid, s.port, 'the transfer has its own TID');
  const record = await logged;
  assert.equal(record.protocol, 'tftp');
  assert.equal(record.client, '127.0.0.1');
  assert.equal(record.outcome, 'complete');
  assert.deepEqual([record.bytesSent, record.bytesDue, record.blksize, record.windowsize, record.mode], [5000, 5000, 512, 1, 'octet']);
  assert.equal(s.stats.byOutcome.get('complete'), 1);
  assert.equal(s.transfers.active.size, 0);
  assert.equal(s.transfers.recent[0]?.protocol, 'tftp');
});

test('edk2: the tsize probe gets exactly the OACK asked, ERROR 8 ends it quietly, the download follows', async (t) => {
  const body = randomBytes(100_000);
  const s = await startTftp({ files: { 'snponly.efi': body } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  const probed = s.nextLog('snponly.efi');
  client.request(s.port, 'snponly.efi', { tsize: 0, blksize: 1468, windowsize: 4 });
  const first = await client.next();
  assert.equal(first?.packet.op, 'oack');
  if (first?.packet.op !== 'oack') return;
  assert.deepEqual([...first.packet.options], [['tsize', '100000'], ['blksize', '1468'], ['windowsize', '4']]);
  client.send(encodeError(8, 'size probe'), first.from.port);
  const record = await probed;
  assert.equal(record.outcome, 'client-gone');
  assert.equal(record.error, 'ERROR 8: size probe', 'the log says why');
  assert.deepEqual(await client.drain(300), [], 'nothing after the client ERROR');

  const got = await download(s.port, 'snponly.efi', { blksize: 1468, windowsize: 4 });
  assert.deepEqual([...(got.oack ?? [])], [['blksize', '1468'], ['windowsize', '4']], 'no tsize unless asked');
  assert.equal(sha(got.data), sha(body));
});

test('blksize above --tftp-max-blksize is granted at the maximum; iPXE-style 1432 as asked', async (t) => {
  const body = randomBytes(10_000);
  const s = await startTftp({ files: { f: body }, tftpMaxBlksize: 1468 });
  t.after(() => s.close());
  const big = await download(s.port, 'f', { blksize: 65464, tsize: 0 });
  assert.deepEqual([...(big.oack ?? [])], [['blksize', '1468'], ['tsize', '10000']]);
  assert.equal(sha(big.data), sha(body));
  const ipxe = await download(s.port, 'f', { blksize: 1432, tsize: 0 });
  assert.equal(ipxe.oack?.get('blksize'), '1432');
  assert.equal(sha(ipxe.data), sha(body));
});

test('sizes that are multiples of blksize end with an empty block; an empty file is one empty block', async (t) => {
  const s = await startTftp({ files: { exact: Buffer.alloc(1024, 1), empty: Buffer.alloc(0) } });
  t.after(() => s.close());
  const exact = await download(s.port, 'exact');
  assert.equal(exact.data.length, 1024);
  assert.equal(exact.packets, 3);
  const empty = await download(s.port, 'empty');
  assert.equal(empty.data.length, 0);
  assert.equal(empty.packets, 1);
});

test('block numbers wrap from 65535 to 0 (blksize 8: 70001 blocks)', async (t) => {
  const body = randomBytes(70_000 * 8);
  const s = await startTftp({ files: { big: body } });
  t.after(() => s.close());
  const got = await download(s.port, 'big', { blksize: 8, windowsize: 64 });
  assert.equal(got.data.length, body.length);
  assert.equal(sha(got.data), sha(body));
});

test('netascii: line ends translated, no tsize offered', async (t) => {
  const s = await startTftp({ files: { 'boot.cfg': 'a\nb\rc\n' } });
  t.after(() => s.close());
  const got = await download(s.port, 'boot.cfg', { tsize: 0, blksize: 8 }, 'NETASCII');
  assert.deepEqual([...(got.oack ?? [])], [['blksize', '8']]);
  assert.deepEqual(got.data, Buffer.from('a\r\nb\r\0c\r\n', 'latin1'));
});

test('a lost ACK: the block comes again after 1 s; a duplicate ACK brings nothing', async (t) => {
  const s = await startTftp({ files: { f: randomBytes(3000) } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  client.request(s.port, 'f');
  const d1 = await client.next();
  assert.equal(d1?.packet.op, 'data');
  const tid = d1?.from.port as number;
  // Say nothing: the server resends DATA 1 on its own timer.
  const started = Date.now();
  const again = await client.next(2000);
  assert.equal(again?.packet.op === 'data' && again.packet.block, 1);
  assert.ok(Date.now() - started >= 900, 'not before the timer');
  client.send(encodeAck(1), tid);
  const d2 = await client.next();
  assert.equal(d2?.packet.op === 'data' && d2.packet.block, 2);
  // The Sorcerer's Apprentice: each duplicate ACK 1 would bring another DATA 2.
  client.send(encodeAck(1), tid);
  client.send(encodeAck(1), tid);
  assert.deepEqual(await client.drain(400), []);
});

test('a client that stops acknowledging is given up after --tftp-timeout; its file is closed', async (t) => {
  const s = await startTftp({ files: { f: randomBytes(100_000) }, tftpTimeoutMs: 1200 });
  t.after(() => s.close());
  const before = await openFds();
  const client = await new RawClient().open();
  const logged = s.nextLog('f');
  client.request(s.port, 'f', { blksize: 1468 });
  const record = await logged;
  assert.equal(record.outcome, 'stalled');
  assert.ok(record.durationMs >= 1100 && record.durationMs < 3000, `${record.durationMs} ms`);
  const packets = await client.drain(100);
  assert.ok(packets.length <= 2, `the OACK and one resend: ${JSON.stringify(packets.map((p) => p.packet))}`);
  client.close();
  // The service runs on a thread of its own, whose start may still close a descriptor of its own
  // after `before`: nothing of the transfer is left (its file, its socket), and nothing more.
  assert.deepEqual(descriptorsUnder(s.root), [], 'the file is closed');
  await eventually(async () => assert.ok((await openFds()) <= before, 'and the transfer socket too'));
});

test('a repeated RRQ from the same port starts nothing new', async (t) => {
  const s = await startTftp({ files: { f: randomBytes(3000) } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  client.request(s.port, 'f');
  client.request(s.port, 'f');
  const packets = await client.drain(300);
  assert.equal(packets.length, 1);
  assert.equal(s.stats.ignored.get('duplicate-request'), 1);
  assert.equal(s.transfers.activeOf('tftp').length, 1);
});

test('paths: leading slash and backslashes accepted; traversal, escaping symlinks and dotfiles get ERROR 1', async (t) => {
  const root = tempRoot({ 'ipxe/snponly.efi': 'efi', '.hidden': 'no', 'top.txt': 'top' }, t);
  const outside = tempRoot({ 'secret.txt': 'secret' }, t);
  symlinkSync(join(outside, 'secret.txt'), join(root, 'escape'));
  symlinkSync(join(root, 'top.txt'), join(root, 'inside'));
  const s = await startTftp({ root });
  t.after(() => s.close());
  for (const name of ['/ipxe/snponly.efi', '\\ipxe\\snponly.efi', 'ipxe\\snponly.efi'])
    assert.equal((await download(s.port, name)).data.toString(), 'efi', name);
  assert.equal((await download(s.port, 'inside')).data.toString(), 'top');
  for (const name of [
    '../' + outside.split('/').pop() + '/secret.txt',
    '..\\..\\etc\\passwd',
    'ipxe/../../etc/passwd',
    'escape',
    '.hidden',
    'missing',
    'ipxe',
  ]) {
    await assert.rejects(download(s.port, name), /ERROR 1: file not found/, name);
  }
  assert.ok((s.stats.refused.get('not-found') ?? 0) >= 7);
  const refusal = s.logs.find((l) => l.path === 'escape');
  assert.deepEqual([refusal?.outcome, refusal?.error], ['refused', 'ERROR 1: file not found'], 'refusals are logged');
});

test('a write request gets ERROR 2 and nothing is written', async (t) => {
  const s = await startTftp({ files: { f: 'x' } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  client.send(encodeRequest('wrq', 'new.bin', 'octet'), s.port);
  const r = await client.next();
  assert.equal(r?.packet.op === 'error' && r.packet.code, 2);
  assert.deepEqual(readdirSync(s.root), ['f']);
  assert.equal(s.stats.refused.get('write-request'), 1);
});

test('malformed datagrams: a broken request gets ERROR 4, other garbage silence; the server goes on', async (t) => {
  const s = await startTftp({ files: { f: 'ok' } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  client.send(Buffer.from('\0\x01no-terminator', 'latin1'), s.port);
  const r = await client.next();
  assert.equal(r?.packet.op === 'error' && r.packet.code, 4);
  client.request(s.port, 'f', {}, 'mail');
  const mail = await client.next();
  assert.equal(mail?.packet.op === 'error' && mail.packet.code, 4);
  for (const junk of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 9, 1]), encodeAck(3), randomBytes(1400)])
    client.send(junk, s.port);
  assert.deepEqual(
    (await client.drain(300)).filter((p) => p.packet.op !== 'error' || p.packet.code !== 4),
    [],
  );
  assert.equal((await download(s.port, 'f')).data.toString(), 'ok');
});

test('caps: a request beyond --tftp-max-transfers gets no answer (never ERROR 0); resent once a slot is free, it is served', async (t) => {
  const s = await startTftp({ files: { f: randomBytes(50_000) }, tftpMaxTransfers: 2 });
  t.after(() => s.close());
  const clients = await Promise.all([1, 2, 3].map(() => new RawClient().open()));
  t.after(() => clients.forEach((c) => c.close()));
  const [a, b, c] = clients as [RawClient, RawClient, RawClient];
  await a.request(s.port, 'f');
  await b.request(s.port, 'f');
  const first = await a.next();
  assert.equal(first?.packet.op, 'data');
  assert.equal((await b.next())?.packet.op, 'data');
  await c.request(s.port, 'f');
  assert.deepEqual(await c.drain(300), [], 'no answer at all: no ERROR for load');
  assert.equal(s.stats.waited.get('server-cap'), 1);
  assert.match(s.metricsText(), /^bootserve_tftp_queue_waiting 1$/m);
  // Still full: the resend waits too.
  await c.request(s.port, 'f');
  assert.deepEqual(await c.drain(200), []);
  // a's transfer ends (the client gives up with an ERROR): its slot goes to c's next resend.
  await a.send(encodeError(0, 'gone'), first?.from.port as number);
  await s.nextLog('f');
  await c.request(s.port, 'f');
  assert.equal((await c.next())?.packet.op, 'data');
  assert.equal(s.stats.admittedAfterWaiting, 1);
  assert.match(s.metricsText(), /^bootserve_tftp_queue_waiting 0$/m);
  assert.deepEqual(s.stats.refused.keys(), [], 'nothing refused');
});

test('a file renamed over mid-transfer is sent as it was; one truncated mid-transfer ends with an ERROR', async (t) => {
  const body = randomBytes(20_000);
  const s = await startTftp({ files: { f: body, g: randomBytes(200_000) } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  client.request(s.port, 'f');
  const first = await client.next();
  writeFileSync(join(s.root, 'new'), 'replacement');
  renameSync(join(s.root, 'new'), join(s.root, 'f'));
  const chunks = [first?.packet.op === 'data' ? Buffer.from(first.packet.data) : Buffer.alloc(0)];
  for (let block = 1; ; block++) {
    client.send(encodeAck(block), first?.from.port as number);
    const r = await client.next();
    assert.equal(r?.packet.op, 'data');
    if (r?.packet.op !== 'data') break;
    chunks.push(Buffer.from(r.packet.data));
    if (r.packet.data.length < 512) {
      client.send(encodeAck(r.packet.block), r.from.port);
      break;
    }
  }
  assert.equal(sha(Buffer.concat(chunks)), sha(body));

  // The file is read a chunk (32 KiB) ahead: it ends with an ERROR where the next read comes short.
  const logged = s.nextLog('g');
  client.request(s.port, 'g', { blksize: 1024 });
  const oack = await client.next();
  truncateSync(join(s.root, 'g'), 1500);
  let r = oack;
  for (let block = 0; block < 200 && r?.packet.op !== 'error'; block++) {
    await client.send(encodeAck(block), oack?.from.port as number);
    r = await client.next();
    assert.ok(r?.packet.op === 'error' || (r?.packet.op === 'data' && r.packet.data.length === 1024), 'never a short block');
  }
  assert.equal(r?.packet.op, 'error');
  const record = await logged;
  assert.equal(record.outcome, 'read-error');
  assert.ok(record.bytesSent < 200_000);
});

test('no amplification: a spoofed request (nobody acknowledges) yields one packet and its resends', async (t) => {
  const s = await startTftp({ files: { big: randomBytes(1024 * 1024) }, tftpTimeoutMs: 2500 });
  t.after(() => s.close());
  const victim = await new RawClient().open();
  t.after(() => victim.close());
  const request = encodeRequest('rrq', 'big', 'octet', { blksize: 1468, windowsize: 64 });
  const logged = s.nextLog('big');
  victim.send(request, s.port);
  await logged;
  const got = await victim.drain(100);
  const bytes = got.reduce((n, r) => n + (r.packet.op === 'oack' ? 25 : 0), 0);
  assert.ok(got.every((r) => r.packet.op === 'oack'), 'never a DATA block');
  assert.ok(got.length <= 3, `${got.length} packets`);
  assert.ok(bytes / request.length < 2, 'no more bytes out than a few times in');

  const plain = encodeRequest('rrq', 'big', 'octet');
  const again = s.nextLog('big');
  victim.send(plain, s.port);
  await again;
  const data = await victim.drain(100);
  assert.ok(data.every((r) => r.packet.op === 'data' && r.packet.block === 1), 'DATA 1 only, resent');
});

test('descriptors: back to the baseline after complete, client-gone, stalled and refused transfers', async (t) => {
  const root = tempRoot({ f: randomBytes(30_000) }, t);
  mkdirSync(join(root, 'dir'));
  const s = await startTftp({ root, tftpTimeoutMs: 1000 });
  t.after(() => s.close());
  const warm = s.nextLog('f');
  await download(s.port, 'f'); // warm up lazily opened handles
  await warm;
  // The file is closed just after the transfer is logged.
  await eventually(() => assert.deepEqual(descriptorsUnder(root), []));
  const before = await openFds();
  const clients = await Promise.all(Array.from({ length: 6 }, () => new RawClient().open()));
  const ends = Promise.all(Array.from({ length: 4 }, () => s.nextLog('f')));
  clients[0]?.request(s.port, 'f', { tsize: 0 });
  clients[1]?.request(s.port, 'f'); // never acknowledged: stalled
  clients[2]?.request(s.port, 'dir');
  clients[3]?.request(s.port, 'missing');
  const probe = await clients[0]?.next();
  clients[0]?.send(encodeError(8, 'probe'), probe?.from.port as number);
  await download(s.port, 'f');
  await download(s.port, 'f', { blksize: 1468, windowsize: 8 });
  const outcomes = (await ends).map((r) => r.outcome).sort();
  assert.deepEqual(outcomes, ['client-gone', 'complete', 'complete', 'stalled']);
  for (const c of clients) c.close();
  assert.deepEqual(descriptorsUnder(root), []);
  await eventually(async () => assert.ok((await openFds()) <= before));
});

test('/-/metrics lines for TFTP and the recent list', async (t) => {
  const s = await startTftp({ files: { f: 'x' } });
  t.after(() => s.close());
  await download(s.port, 'f');
  await assert.rejects(download(s.port, 'nope'));
  const text = s.metricsText();
  assert.match(text, /^# TYPE bootserve_tftp_transfers_total counter$/m);
  assert.match(text, /^bootserve_tftp_transfers_total\{outcome="complete"\} 1$/m);
  assert.match(text, /^bootserve_tftp_refused_requests_total\{reason="not-found"\} 1$/m);
  assert.match(text, /^bootserve_tftp_sent_bytes_total 1$/m);
  assert.match(text, /^bootserve_tftp_active_transfers 0$/m);
  assert.equal(s.transfers.recent[0]?.detail, 'blksize 512, window 1');
});

test('shutdown: running transfers are stopped with an ERROR and recorded', async (t) => {
  const s = await startTftp({ files: { f: randomBytes(100_000) } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  const logged = s.nextLog('f');
  client.request(s.port, 'f');
  await client.next();
  await s.server.shutdown(0);
  assert.equal((await logged).outcome, 'shutdown');
  const r = await client.next(500);
  assert.equal(r?.packet.op, 'error');
});

test('/-/status and the live view list a running TFTP transfer beside HTTP ones', async (t) => {
  const s = await startTftp({ files: { 'snponly.efi': randomBytes(100_000) } });
  t.after(() => s.close());
  const client = await new RawClient().open();
  t.after(() => client.close());
  await client.request(s.port, 'snponly.efi', { blksize: 1468 });
  await client.next();
  const status = statusOf({
    version: 't',
    root: s.root,
    settings: {},
    transfers: s.transfers,
    ready: () => true,
    services: () => s.app.services,
  });
  assert.equal(status.active.length, 1);
  assert.deepEqual(
    [status.active[0]?.protocol, status.active[0]?.path, status.active[0]?.client, status.active[0]?.bytesDue],
    ['tftp', 'snponly.efi', '127.0.0.1', 100_000],
  );
  assert.match(renderLines(s.transfers, 100)[0] ?? '', /^ {2}tftp snponly\.efi 127\.0\.0\.1 \[/);
});

test('/-/metrics carries the bootserve_tftp_* families after the HTTP ones', async (t) => {
  const s = await startTftp();
  t.after(() => s.close());
  const text = s.metricsText();
  assert.match(text, /^# TYPE bootserve_requests_total counter$/m);
  assert.match(text, /^bootserve_tftp_transfers_total\{outcome="complete"\} 0$/m);
  assert.ok(text.indexOf('bootserve_requests_total') < text.indexOf('bootserve_tftp_transfers_total'));
});

test('shutdown while a request is still being opened: nothing starts after it, and it ends at once', async (t) => {
  // The service alone, for a hook into the opening: the late file lies outside the root, so the
  // fallback resolves it, which runs while the request is being opened; it begins the shutdown.
  const root = tempRoot({ a: randomBytes(100_000) }, t);
  const elsewhere = tempRoot({ b: randomBytes(100_000) }, t);
  const logs: TftpRecord[] = [];
  let shutdown: Promise<void> | undefined;
  let started = 0;
  const server = createTftpService(
    { port: 0, host: '127.0.0.1', maxBlksize: 1468, timeoutMs: 8000, maxTransfers: 8, maxPerClient: 4, dotfiles: false },
    {
      root,
      logger: { access: (r) => void (r.protocol === 'tftp' && logs.push(r)), error: () => {}, info: () => {} },
      transfers: new Transfers(),
      fallback: (segments) => {
        if (segments.join('/') !== 'b') return undefined;
        started = Date.now();
        shutdown = server.shutdown(0);
        return join(elsewhere, 'b');
      },
    },
  );
  await server.start();
  t.after(() => server.shutdown(0));
  const port = (server.addresses()[0] as { port: number }).port;
  const running = await new RawClient().open();
  const late = await new RawClient().open();
  try {
    await running.request(port, 'a');
    await running.next();
    await late.request(port, 'b');
    await eventually(() => shutdown !== undefined, { what: 'the late request to be opened' });
    await shutdown;
    assert.ok(Date.now() - started < 2000, `shutdown took ${Date.now() - started} ms`);
    // At most the ERROR that says so; not one block of the file, and no transfer in the log.
    const packets = (await late.drain(300)).map((r) => r.packet);
    const seen = packets.map((p) => (p.op === 'data' ? `DATA ${p.block}` : p.op === 'error' ? `ERROR ${p.code}` : p.op));
    assert.ok(packets.length <= 1 && packets.every((p) => p.op === 'error'), `the late request got ${seen.join(', ')}`);
    assert.deepEqual(logs.filter((l) => l.path === 'b' && l.bytesSent > 0), []);
  } finally {
    running.close();
    late.close();
  }
});
