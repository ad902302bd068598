// The install route that works without the public registry, as README.md and
// contrib/systemd/README.md document it: `npm pack` in a checkout, then the package file
// installed with `npm install -g --prefix /usr/local`. Here the prefix is a temporary folder
// standing in for /usr/local: the installed command runs, and the systemd unit, pointed at it
// the way it points at /usr/local/bin/bootserve, passes `systemd-analyze verify`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { need } from '../helpers/tools.js';

const REPO = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const UNITS = join(REPO, 'contrib/systemd');
const PREFIX = '/usr/local';

function npm(args: string[], cwd: string) {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|NODE_V8_COVERAGE$)/.test(k)) env[k] = v;
  const r = spawnSync('npm', args, {
    cwd,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...env, npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' },
  });
  assert.equal(r.status, 0, `npm ${args.join(' ')}: ${r.error?.message ?? ''}\n${r.stderr}`);
  return r.stdout;
}

test('the documented routes name the same path: npm install -g --prefix /usr/local, ExecStart=/usr/local/bin/bootserve', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const units = readFileSync(join(UNITS, 'README.md'), 'utf8');
  for (const text of [readme, units]) assert.match(text, /npm install -g --prefix \/usr\/local \.\/bootserve-[\d.]+\.tgz/);
  assert.match(readFileSync(join(UNITS, 'bootserve.service'), 'utf8'), new RegExp(`^ExecStart=${PREFIX}/bin/bootserve `, 'm'));
  assert.doesNotMatch(units, /npm install -g bootserve\b(?! once)/, 'the registry route is only for when the package is published');
});

test('npm pack, installed into a prefix: the command runs and the unit pointing at it verifies', { timeout: 300_000 }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bootserve-install-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  npm(['pack', '--pack-destination', dir, '--silent'], REPO);
  const tarball = readdirSync(dir).find((f) => /^bootserve-[\d.]+\.tgz$/.test(f));
  assert.ok(tarball, 'npm pack wrote bootserve-VERSION.tgz');
  const prefix = join(dir, 'usr-local');
  // No dependencies: nothing to fetch from a registry.
  npm(['install', '-g', '--offline', '--prefix', prefix, join(dir, tarball)], dir);
  const bin = join(prefix, 'bin/bootserve');
  assert.ok(existsSync(bin), `${bin} installed`);
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version, version.stderr);
  const menu = spawnSync(bin, ['--print-menu', join(REPO, 'contrib/netboot')], { encoding: 'utf8', timeout: 30_000 });
  assert.match(menu.stdout, /^item about-this-machine\.ipxe /m, menu.stderr);

  if (!need(t, 'systemd-analyze', 'systemd')) return;
  const units = join(dir, 'units');
  mkdirSync(join(units, 'bootserve.service.d'), { recursive: true });
  copyFileSync(join(UNITS, 'bootserve.socket'), join(units, 'bootserve.socket'));
  copyFileSync(join(UNITS, 'tftp.conf'), join(units, 'bootserve.service.d/tftp.conf'));
  const service = readFileSync(join(UNITS, 'bootserve.service'), 'utf8');
  writeFileSync(join(units, 'bootserve.service'), service.replaceAll(`${PREFIX}/bin/bootserve`, bin));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(units, 'bootserve.socket'), join(units, 'bootserve.service')], {
    cwd: units,
    encoding: 'utf8',
    timeout: 60_000,
  });
  const ours = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /bootserve/.test(l));
  assert.deepEqual(ours, [], `systemd-analyze verify complained:\n${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
});
