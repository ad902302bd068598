// The operator pages stay on localhost when --host names another address (issue 18, finding 6):
// the builder adds the admin pages on 127.0.0.1 at HTTP's port; when that port is taken there,
// bootserve starts anyway and its banner names the URL that works.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { adminReply, type AdminState } from '../../lib/admin/pages.js';
import { createLocalAdmin, needsLocalAdmin } from '../../lib/admin/local.js';
import { createHttpService } from '../../lib/http/server.js';
import { Transfers } from '../../lib/observe/transfers.js';
import { fetch } from '../helpers/server.js';
import { tempRoot } from '../helpers/temp.js';
import { BIN, need, skipOrFail, start } from '../helpers/tools.js';

test('which --host leaves localhost out: one address that is neither loopback nor a wildcard', () => {
  for (const host of [undefined, '0.0.0.0', '::', '127.0.0.1', '127.0.1.1', '::1', 'localhost'])
    assert.equal(needsLocalAdmin(host), false, String(host));
  for (const host of ['198.18.0.2', '10.0.0.1', 'fe80::1', '2001:db8::2']) assert.equal(needsLocalAdmin(host), true, host);
});

function adminOn(port: number) {
  const transfers = new Transfers();
  const state: AdminState = { version: 't', root: '/srv', settings: {}, transfers, ready: () => true, services: () => [] };
  const logger = { access: () => {}, error: () => {}, info: () => {} };
  return createHttpService(
    {
      name: 'admin',
      host: '127.0.0.1',
      port,
      headerTimeoutMs: 1000,
      keepAliveTimeoutMs: 1000,
      maxConnections: 10,
      maxConnectionsPerIp: 10,
      stallTimeoutMs: 1000,
      listing: false,
      dotfiles: false,
    },
    { root: undefined, logger, transfers, admin: (req) => adminReply(req, state), shuttingDown: () => false },
  );
}

test('the local admin listener: on 127.0.0.1 at the port given; a taken port is a banner warning, not a failed start', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as AddressInfo).port;
  try {
    const refused = createLocalAdmin({ port: () => port, create: adminOn, elsewhere: () => 'http://198.18.0.2:8080/-/' });
    await refused.start();
    const [line] = refused.banner();
    assert.equal(line?.level, 'warn');
    assert.match(line?.text ?? '', /not on localhost \(.*\); they are at http:\/\/198\.18\.0\.2:8080\/-\/$/);
    assert.deepEqual(refused.status(), { address: null });
    await refused.shutdown(0);
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
  // The port is free now: the pages are there.
  const local = createLocalAdmin({ port: () => port, create: adminOn, elsewhere: () => '-' });
  await local.start();
  try {
    assert.equal(local.banner()[0]?.text, `admin pages also on http://127.0.0.1:${port}/-/ (--host leaves localhost out)`);
    assert.equal((await fetch(`http://127.0.0.1:${port}/-/healthy`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/boot.ipxe`)).status, 404, 'the pages only, no files');
  } finally {
    await local.shutdown(0);
  }
});

test(
  'the binary with --host on another address: /-/ answers on 127.0.0.1 at the same port (network namespace)',
  { timeout: 60_000 },
  async (t) => {
    if (process.getuid?.() !== 0) return skipOrFail(t, 'needs root for a network namespace');
    if (!need(t, 'ip', 'iproute2', ['-V'])) return;
    const ns = `bsp-${process.pid}-admin`;
    const ip = (...args: string[]) => {
      const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
    };
    const root = tempRoot({ 'boot.ipxe': '#!ipxe\n' }, t);
    try {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      // A veth pair inside the namespace (no dummy module needed): lan0 carries the --host address.
      ip('-n', ns, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1');
      ip('-n', ns, 'addr', 'add', '198.18.0.2/24', 'dev', 'lan0');
      ip('-n', ns, 'link', 'set', 'lan0', 'up');
      ip('-n', ns, 'link', 'set', 'lan1', 'up');
      const server = start('ip', ['netns', 'exec', ns, process.execPath, BIN, '-H', '198.18.0.2', '-p', '0', root]);
      t.after(() => server.stop());
      const listening = await server.waitForLine(/listening on http:\/\/198\.18\.0\.2:\d+\//);
      const port = /:(\d+)\//.exec(listening)?.[1];
      await server.waitForLine(new RegExp(`admin pages also on http://127\\.0\\.0\\.1:${port}/-/`));
      // Inside the namespace, as the operator on that host would: curl http://127.0.0.1:PORT/-/machines.
      const probe = `fetch(process.argv[1]).then(async (r) => console.log(r.status, (await r.text()).slice(0, 200))` +
      `, (e) => console.log('error', e.message))`;
      const get = (url: string) =>
        spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', probe, url], { encoding: 'utf8', timeout: 15_000 }).stdout.trim();
      assert.match(get(`http://127.0.0.1:${port}/-/machines`), /^200 \[/);
      assert.match(get(`http://127.0.0.1:${port}/-/`), /^200 <!doctype html>/);
      assert.match(get(`http://127.0.0.1:${port}/boot.ipxe`), /^404 /, 'files stay on --host');
      assert.match(get(`http://198.18.0.2:${port}/boot.ipxe`), /^200 #!ipxe/);
      await server.stop();
    } finally {
      spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
      rmSync(root, { recursive: true, force: true });
    }
  },
);
