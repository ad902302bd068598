// The operator page (/-/): the pure renderer, the script that re-renders it in the browser, and
// the page in a real browser (headless chromium) over a bootserve built by the production builder.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { firmwareLabel, fleetPage, renderFleet, type FleetData } from '../../lib/admin/fleet.js';
import { adminReply } from '../../lib/admin/pages.js';
import { humanBytes, humanDuration, plural } from '../../lib/observe/human.js';
import type { DhcpRecord, HttpRecord, TftpRecord } from '../../lib/observe/log.js';
import { Machines, type MachineView } from '../../lib/observe/machines.js';
import { Transfers } from '../../lib/observe/transfers.js';
import { stageOf } from '../../lib/observe/stages.js';
import { artifactsDir, browse, CHROMIUM } from '../helpers/browser.js';
import { fetch, startServer } from '../helpers/server.js';
import { need } from '../helpers/tools.js';

const at = (secondsAgo: number, now = Date.now()) => new Date(now - secondsAgo * 1000).toISOString();
const dhcp = (r: Partial<DhcpRecord>): DhcpRecord => ({
  protocol: 'dhcp',
  time: at(0),
  client: '0.0.0.0',
  mac: '52:54:00:00:00:0a',
  port: 67,
  message: 'DISCOVER',
  xid: '0x1',
  arch: 7,
  answer: 'offer',
  kind: 'uefi-pxe',
  ...r,
});
const tftp = (r: Partial<TftpRecord>): TftpRecord => ({
  protocol: 'tftp',
  time: at(0),
  client: '198.18.0.10',
  path: 'ipxe/snponly.efi',
  mode: 'octet',
  bytesSent: 1_048_576,
  bytesDue: 1_048_576,
  blksize: 1468,
  windowsize: 4,
  retransmits: 0,
  durationMs: 820,
  outcome: 'complete',
  ...r,
});
const http = (r: Partial<HttpRecord>): HttpRecord => ({
  protocol: 'http',
  time: at(0),
  client: '198.18.0.10',
  method: 'GET',
  path: '/boot.ipxe',
  status: 200,
  bytesSent: 1200,
  bytesDue: 1200,
  durationMs: 4,
  outcome: 'complete',
  userAgent: 'iPXE/1.21',
  ...r,
});

/** Three machines, as their records arrive: one done, one that got no answer, one whose kernel stalled. */
function feed(m: { observe: Machines['observe'] }, now = Date.now()): void {
  const a = { client: '198.18.0.10' };
  m.observe(dhcp({ time: at(40, now) }));
  m.observe(dhcp({ ...a, time: at(39, now), port: 4011, message: 'REQUEST', answer: 'ack', bootFile: 'ipxe/snponly.efi' }));
  m.observe(tftp({ ...a, time: at(38, now), bytesSent: 0, outcome: 'client-gone', error: 'ERROR 8: size probe' }));
  m.observe(tftp({ ...a, time: at(37, now) }));
  m.observe(http({ ...a, time: at(35, now) }));
  m.observe(http({ ...a, time: at(35, now), path: '/machines/52-54-00-00-00-0a.ipxe', status: 404, bytesSent: 9, bytesDue: 9 }));
  m.observe(http({ ...a, time: at(33, now), path: '/debian/vmlinuz', bytesSent: 31_457_280, bytesDue: 31_457_280, durationMs: 2600 }));
  m.observe(http({ ...a, time: at(31, now), path: '/debian/initrd.gz', bytesSent: 41_943_040, bytesDue: 41_943_040, durationMs: 3100 }));
  m.observe(
    http({ ...a, time: at(30, now), path: '/debian/firmware.cpio.gz', bytesSent: 4_194_304, bytesDue: 4_194_304, durationMs: 400 }),
  );

  m.observe(
    dhcp({
      time: at(20, now),
      mac: '52:54:00:00:00:0b',
      arch: 11,
      answer: 'ignored',
      kind: undefined,
      reason: 'no-boot-file',
      detail: 'no iPXE binary for efi-arm64',
    }),
  );
  m.observe(
    dhcp({
      time: at(19, now),
      mac: '52:54:00:00:00:99',
      arch: null,
      answer: 'ignored',
      kind: undefined,
      reason: 'not-pxe',
      detail: 'no PXEClient vendor class',
    }),
  );

  const c = { client: '198.18.0.12' };
  m.observe(dhcp({ time: at(15, now), mac: '52:54:00:00:00:0c', arch: 0, kind: 'bios-pxe' }));
  m.observe(
    dhcp({
      ...c,
      time: at(15, now),
      mac: '52:54:00:00:00:0c',
      arch: 0,
      kind: 'bios-pxe',
      port: 4011,
      message: 'REQUEST',
      answer: 'ack',
      bootFile: 'ipxe/undionly.kpxe',
    }),
  );
  m.observe(tftp({ ...c, time: at(14, now), path: 'ipxe/undionly.kpxe', bytesSent: 70_000, bytesDue: 70_000, durationMs: 90 }));
  m.observe(http({ ...c, time: at(12, now) }));
  m.observe(http({ ...c, time: at(12, now), path: '/favicon.ico', status: 404 }));
  m.observe(
    http({
      ...c,
      time: at(1, now),
      path: '/debian/vmlinuz',
      outcome: 'stalled',
      bytesSent: 5_242_880,
      bytesDue: 31_457_280,
      durationMs: 10_400,
    }),
  );
}

test('human figures: sizes, durations, plurals, firmware', () => {
  assert.deepEqual([0, 512, 1536, 1048575, 31_457_280, 5 * 2 ** 40].map(humanBytes), [
    '0 B',
    '512 B',
    '1.5 KiB',
    '1.0 MiB',
    '30.0 MiB',
    '5.0 TiB',
  ]);
  assert.deepEqual([4, 999, 1000, 3400, 125_000, 3_780_000, 2 * 86_400_000 + 3_600_000].map(humanDuration), [
    '4 ms',
    '999 ms',
    '1.0 s',
    '3.4 s',
    '2 min 5 s',
    '1 h 3 min',
    '2 d 1 h',
  ]);
  assert.deepEqual(
    [0, 1, 2].map((n) => plural(n, 'connection')),
    ['0 connections', '1 connection', '2 connections'],
  );
  const firmware = [
    ['bios-pxe', 0],
    ['ipxe', 0],
    ['uefi-pxe', 7],
    ['uefi-http', 16],
    [null, 11],
    [null, null],
  ] as const;
  assert.deepEqual(
    firmware.map(([f, arch]) => firmwareLabel({ firmware: f, arch, bootPath: null })),
    ['BIOS PXE', 'iPXE BIOS', 'UEFI PXE x64', 'UEFI HTTP Boot x64', 'ARM64', 'firmware unknown'],
  );
  assert.equal(firmwareLabel({ firmware: 'uefi-pxe', arch: 11, bootPath: 'signed' }), 'UEFI PXE ARM64, signed shim → GRUB');
});

test('step names: a kernel over TFTP is a kernel, a listing is a listing, noise is noise', () => {
  const what = (p: string) => `${stageOf(p).stage}/${stageOf(p).what}`;
  assert.equal(what('ipxe/snponly.efi'), 'boot-program/boot program');
  assert.equal(what('undionly.kpxe'), 'boot-program/boot program');
  assert.equal(what('debian/vmlinuz'), 'kernel/kernel');
  assert.equal(what('/debian/linux'), 'kernel/kernel');
  assert.equal(what('/fedora/vmlinuz.efi'), 'kernel/kernel');
  assert.equal(what('/debian/initrd.gz'), 'initrd/initrd');
  assert.equal(what('/alpine/initramfs-lts'), 'initrd/initrd');
  assert.equal(what('/debian/cmdline'), 'other/cmdline');
  assert.equal(what('/boot.ipxe'), 'script/boot script');
  assert.equal(what('/machines/52-54-00-00-00-0a.ipxe'), 'script/machine script');
  assert.equal(what('/debian/'), 'other/directory listing');
  assert.equal(what('/?x=1'), 'other/directory listing');
  assert.equal(what('/favicon.ico'), 'other/browser noise');
  assert.equal(what('/robots.txt'), 'other/browser noise');
  assert.equal(what('/debian/netboot.tar.gz'), 'other/file');
});

function data(): FleetData {
  const m = new Machines();
  const now = Date.parse('2026-12-05T21:00:00Z');
  feed(m, now);
  const machines = m.list(now);
  const counts = { total: machines.length, booting: 0, waiting: 0, done: 0, failed: 0 };
  for (const x of machines) counts[x.state]++;
  const status = {
    version: '9.9.9',
    now: new Date(now).toISOString(),
    root: '/srv/netboot',
    uptimeSeconds: 200,
    connections: 1,
    active: [
      {
        protocol: 'http' as const,
        client: '198.18.0.12',
        path: '/debian/initrd.gz',
        range: null,
        bytesSent: 10_485_760,
        bytesDue: 41_943_040,
        percent: 25,
        bytesPerSecond: 4_194_304,
        secondsSinceProgress: 3,
        seconds: 2.5,
      },
    ],
    recent: [
      {
        protocol: 'http' as const,
        client: '198.18.0.12',
        path: '/debian/vmlinuz',
        range: undefined,
        status: 200,
        outcome: 'stalled' as const,
        bytesSent: 5_242_880,
        bytesDue: 31_457_280,
        durationMs: 10_400,
        finishedAt: at(1, now),
      },
    ],
    machines: counts,
  };
  return { status, machines };
}

test('the picture: states counted, timelines in order, failures in red with the reason, figures human', () => {
  const d = data();
  assert.deepEqual(d.status.machines, { total: 3, booting: 0, waiting: 0, done: 1, failed: 2 }, 'not-pxe traffic is nobody');
  const html = renderFleet(d);
  assert.match(html, /<b>1<\/b> done/);
  assert.match(html, /<b>2<\/b> failed/);
  assert.match(html, / 1 connection · 1 transfer running/);
  const card = (mac: string) => new RegExp(`<article[^>]*data-mac="${mac}"[^>]*>(.*?)</article>`).exec(html)?.[1] ?? '';
  const done = card('52:54:00:00:00:0a');
  assert.deepEqual([...done.matchAll(/data-stage="([a-z-]+)"/g)].map((x) => x[1]), ['dhcp', 'boot-program', 'script', 'kernel', 'initrd']);
  assert.match(done, /class="step ok" data-stage="kernel">.*?vmlinuz.*?over HTTP · complete.*?30\.0 MiB in 2\.6 s · 11\.5 MiB\/s/);
  assert.match(done, /data-stage="boot-program">.*?over TFTP · complete/, 'the size probe before it is no failure');
  assert.match(done, /data-stage="initrd">.*?initrd\.gz \+ firmware\.cpio\.gz.*?4\.0 MiB in 400 ms/, 'two initrds: both named');
  assert.match(done, /class="step ok" data-stage="script">.*?boot\.ipxe/, 'the missing machine script does not hide the boot script');
  const ignored = card('52:54:00:00:00:0b');
  assert.match(ignored, /class="badge failed"/);
  assert.match(
    ignored,
    /class="step failed" data-stage="dhcp">.*?DISCOVER not answered.*?class="reason">no-boot-file: no iPXE binary for efi-arm64/,
  );
  assert.match(ignored, /UEFI\s*ARM64|ARM64/);
  assert.match(ignored, /class="why">✗ DISCOVER not answered: no-boot-file/);
  const stalled = card('52:54:00:00:00:0c');
  // The initrd transfer running for that address shows in its column, with live figures.
  assert.match(
    stalled,
    /class="step running" data-stage="initrd">.*?25\.0% · 10\.0 MiB of 40\.0 MiB · 4\.0 MiB\/s.*?no progress for 3\.0 s/,
  );
  assert.match(
    stalled,
    /class="step failed" data-stage="kernel">.*?over HTTP · <span class="reason">stalled.*?5\.0 MiB of 30\.0 MiB in 10\.4 s/,
  );
  assert.doesNotMatch(stalled, /favicon/, 'browser noise is not a step');
  assert.doesNotMatch(html, /52:54:00:00:00:99/);
  assert.match(
    html,
    /<td>kernel<\/td>.*?<span class="result">stalled<\/span><\/td><td>5\.0 MiB of 30\.0 MiB in 10\.4 s/,
    'finished transfers in the same human figures',
  );
  assert.match(html, /<time datetime="2026-12-05T20:59:59\.000Z"/, 'times carry their ISO form for the browser');
});

test('the page is bounded: the latest machines, and a count of the rest', () => {
  const d = data();
  d.status.machines.total = 120;
  assert.match(renderFleet(d), /and 117 more machines/);
});

// The build (tsc, dist/) is what runs in production; the tests run the source through tsx.
for (const build of ['source', 'dist'] as const) {
  test(`the page's script is the renderer itself: it runs alone and draws the same picture (${build})`, async (t) => {
    const dist = new URL('../../dist/admin/fleet.js', import.meta.url);
    if (build === 'dist' && !existsSync(dist)) return t.skip('not built (npm run build)');
    const fleet = (build === 'dist' ? await import(dist.href) : { fleetPage, renderFleet }) as {
      fleetPage: typeof fleetPage;
      renderFleet: typeof renderFleet;
    };
    const d = data();
    const page = fleet.fleetPage(d);
    assert.match(page, /<noscript><meta http-equiv="refresh"/);
    assert.match(page, /<link rel="icon" href="data:,">/, 'no /favicon.ico request from this page');
    const script = /<script>([\s\S]*)<\/script>/.exec(page)?.[1] ?? '';
    const main = {
      innerHTML: '',
      attributes: {} as Record<string, string>,
      setAttribute(k: string, v: string) {
        this.attributes[k] = v;
      },
    };
    const urls: string[] = [];
    const sandbox = {
      document: { getElementById: () => main, body: { classList: { add() {}, remove() {} } } },
      fetch: async (url: string) => (
        urls.push(url),
        { ok: true, json: async () => JSON.parse(JSON.stringify(url.startsWith('/-/status') ? d.status : d.machines)) }
      ),
      setInterval: () => 0,
      Promise,
      Intl,
      Date,
    };
    runInNewContext(script, sandbox, { timeout: 2000 });
    for (let i = 0; i < 20 && main.attributes['data-rendered'] !== 'browser'; i++) await sleep(10);
    assert.deepEqual(urls, ['/-/status', '/-/machines?limit=50']);
    assert.equal(main.attributes['data-rendered'], 'browser');
    assert.equal(main.innerHTML, fleet.renderFleet(d), 'the browser draws what the server drew');
  });
}

test(
  'in a real browser: /-/ draws the fleet of a running bootserve, re-rendered by its script from the JSON endpoints',
  { timeout: 120_000 },
  async (t) => {
    if (!need(t, CHROMIUM, 'chromium')) return;
    const dir = mkdtempSync(join(tmpdir(), 'bootserve-page-'));
    // A stall window longer than the browser can take under load: the kernel is still running when it looks.
    const files = { 'boot.ipxe': '#!ipxe\nchain debian/vmlinuz\n', 'debian/vmlinuz': randomBytes(24 * 1024 * 1024) };
    const s = await startServer({ files, stallTimeoutMs: 120_000 });
    const socket = connect(s.port, '127.0.0.1');
    try {
      // Three machines through the records tap, one for real: 127.0.0.1 is 52:54:00:00:00:0d.
      feed(s.app.machines);
      s.app.machines.observe(
        dhcp({
          client: '127.0.0.1',
          mac: '52:54:00:00:00:0d',
          port: 4011,
          message: 'REQUEST',
          answer: 'ack',
          bootFile: 'ipxe/snponly.efi',
        }),
      );
      assert.equal((await fetch(`${s.url}/boot.ipxe`)).status, 200);
      assert.equal((await fetch(`${s.url}/favicon.ico`)).status, 204);
      // A kernel download that reads nothing: running, with "no progress".
      socket.pause();
      socket.on('error', () => {});
      socket.write('GET /debian/vmlinuz HTTP/1.1\r\nHost: x\r\n\r\n');
      for (let i = 0; i < 50 && s.transfers.active.size === 0; i++) await sleep(20);

    const artifacts = artifactsDir(dir);
    mkdirSync(artifacts, { recursive: true });
    const shot = join(artifacts, 'operator-page-fed.png');
    const { dom } = await browse(`${s.url}/-/`, dir, shot, { height: 1100 });
    t.diagnostic(`screenshot: ${shot}`);
    assert.match(dom, /<main id="fleet" data-rendered="browser">/, 'the script re-rendered the page from /-/status and /-/machines');
    const card = (mac: string) => new RegExp(`<article[^>]*data-mac="${mac}"[^>]*>(.*?)</article>`, 's').exec(dom)?.[1] ?? '';
    assert.match(card('52:54:00:00:00:0a'), /data-stage="initrd">.*?initrd\.gz/s);
    assert.match(card('52:54:00:00:00:0b'), /no-boot-file: no iPXE binary for efi-arm64/);
    assert.match(card('52:54:00:00:00:0c'), /class="step failed" data-stage="kernel">.*?stalled/s);
    const real = card('52:54:00:00:00:0d');
    assert.match(real, /class="step ok" data-stage="script">.*?boot\.ipxe/s);
    assert.match(real, /class="step running" data-stage="kernel">.*?vmlinuz.*?<progress/s, 'the running kernel in its column');
    assert.doesNotMatch(real, /favicon/, "the browser's favicon.ico is not the machine's error");
    assert.match(dom, /class="badge booting">booting/);
  } finally {
    socket.destroy();
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a machine with a transfer running is booting, even right after a failed step (the menu retries)', () => {
  const machines = new Machines();
  feed(machines);
  const transfers = new Transfers();
  const state = { version: 't', root: '/srv', settings: {}, transfers, machines, ready: () => true, services: () => [] };
  const json = (url: string) => JSON.parse((adminReply({ url } as IncomingMessage, state).parts[0] as Buffer).toString());
  const stateOf = () => (json('/-/machines') as MachineView[]).find((m) => m.mac === '52:54:00:00:00:0c')?.state;
  assert.equal(stateOf(), 'failed');
  assert.equal(json('/-/status').machines.failed, 2);
  const retry = transfers.begin({
    protocol: 'http',
    client: '198.18.0.12',
    path: '/debian/vmlinuz',
    range: undefined,
    bytesDue: 31_457_280,
  });
  assert.equal(stateOf(), 'booting');
  assert.deepEqual(json('/-/status').machines, { total: 3, booting: 1, waiting: 0, done: 1, failed: 1 });
  assert.equal((json('/-/machines?limit=1') as MachineView[]).length, 1);
  transfers.end(retry, 'complete', { status: 200 });
});
