// TFTP's privileged port as a service user meets it: bootserve as nobody asking for UDP port 69.
// It runs in a network namespace of its own, where ports below 1024 are privileged whatever the
// host's net.ipv4.ip_unprivileged_port_start says and nothing else holds port 69: the test makes
// the condition it names instead of skipping when the host does not have it. Needs root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { test } from 'node:test';
import { tempRoot } from '../helpers/temp.js';
import { BIN, cannotRunAsNobody, need, skipOrFail } from '../helpers/tools.js';

test('port 69 without the capability: one line on stderr says how to grant it, exit 1', (t) => {
  const why = cannotRunAsNobody();
  if (why) return skipOrFail(t, why);
  if (!need(t, 'unshare', 'util-linux') || !need(t, 'setpriv', 'util-linux') || !need(t, 'ip', 'iproute2', ['-V'])) return;
  const root = tempRoot({}, t);
  chmodSync(root, 0o755);
  // A fresh namespace: only lo, down until we bring it up; then drop to nobody. Without c8's
  // NODE_V8_COVERAGE (Node passes it to children whatever env says): nobody could not write there.
  const inNamespace = 'ip link set lo up && unset NODE_V8_COVERAGE && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"';
  const args = [process.execPath, BIN, root, '--tftp', '--port', '0', '--host', '127.0.0.1'];
  const r = spawnSync('unshare', ['--net', '--', 'sh', '-c', inNamespace, 'sh', ...args], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 1, `exit ${r.status ?? r.signal}; stderr: ${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /permission denied for UDP port 69 on 127\.0\.0\.1: .*CAP_NET_BIND_SERVICE/);
});
