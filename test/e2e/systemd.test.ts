// contrib/systemd: the units pass `systemd-analyze verify`, their syscall filter and address
// families cover what bootserve really calls (strace), and socket activation works for real
// (an inherited listening socket as fd 3, LISTEN_FDS=1, LISTEN_PID=<pid>), with python3 doing
// what systemd does (also across a restart on a kept socket), and with systemd-socket-activate.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'node:http';
import { download } from '../helpers/tftp.js';
import { BIN, freePort, get, KEEP_ROOT, need, sha256, skipOrFail, start, type Child } from '../helpers/tools.js';
import { eventually } from '../helpers/eventually.js';
import { tempDir, type Owner } from '../helpers/temp.js';

const UNITS = new URL('../../contrib/systemd/', import.meta.url);
const unitText = (name: string) => readFileSync(new URL(name, UNITS), 'utf8');
const BODY = randomBytes(3 * 1024 * 1024 + 17);

function artifacts(t: Owner): string {
  const root = tempDir(t, 'bootserve-systemd-');
  writeFileSync(join(root, 'vmlinuz'), BODY);
  writeFileSync(join(root, 'hello.txt'), 'hello\n');
  return root;
}

/** The environment without anything that would change bootserve's behaviour under test. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(BOOTSERVE_|LISTEN_|PORT$|NODE_OPTIONS$)/.test(k)) env[k] = v;
  return env;
}

/** Values of `Key=` lines in a unit, in order (comments skipped). */
function settings(text: string, key: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1).trim());
}

describe('systemd units', () => {
  test('systemd-analyze verify accepts bootserve.socket, bootserve.service and the TFTP drop-in', { timeout: 60_000 }, (t) => {
    if (!need(t, 'systemd-analyze', 'systemd')) return;
    // verify insists that ExecStart's executable exists: check a copy that points at the
    // built command (the bin shim is executable, with a node shebang).
    const dir = tempDir(t, 'bootserve-units-');
    for (const name of ['bootserve.socket', 'bootserve.service']) copyFileSync(new URL(name, UNITS), join(dir, name));
    // Drop-ins beside a unit given by path are read and checked with it.
    mkdirSync(join(dir, 'bootserve.service.d'));
    copyFileSync(new URL('tftp.conf', UNITS), join(dir, 'bootserve.service.d', 'tftp.conf'));
    const service = join(dir, 'bootserve.service');
    const text = readFileSync(service, 'utf8');
    assert.match(text, /^ExecStart=\/usr\/local\/bin\/bootserve /m);
    writeFileSync(service, text.replace(/^ExecStart=\/usr\/local\/bin\/bootserve /m, `ExecStart=${BIN} `));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'bootserve.socket'), service], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 50_000,
    });
    if (r.error) return skipOrFail(t, `systemd-analyze verify could not run: ${r.error.message}`);
    // Unknown keys and bad values are only warnings (exit 0): any line about our units fails.
    const ours = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /bootserve/.test(l));
    assert.deepEqual(ours, [], `systemd-analyze verify complained:\n${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
  });

  test('the units say what the design needs', () => {
    const socket = unitText('bootserve.socket');
    const service = unitText('bootserve.service');
    assert.deepEqual(settings(socket, 'ListenStream'), ['8080']);
    assert.deepEqual(settings(service, 'Requires'), ['bootserve.socket']);
    assert.deepEqual(settings(service, 'After'), ['bootserve.socket']);
    assert.deepEqual(settings(service, 'Type'), ['simple']);
    assert.deepEqual(settings(service, 'DynamicUser'), ['yes']);
    assert.deepEqual(settings(service, 'MemoryDenyWriteExecute'), [], 'V8 needs W+X memory for its JIT');
    assert.deepEqual(settings(service, 'ProcSubset'), [], 'the stall guard reads /proc/net/tcp');
    assert.deepEqual(settings(service, 'AmbientCapabilities'), [], 'socket activation needs no capability');
    const stop = /^(\d+)s$/.exec(settings(service, 'TimeoutStopSec')[0] ?? '');
    const grace = /^(\d+)s$/.exec(
      settings(service, 'Environment')
        .find((e) => e.startsWith('BOOTSERVE_SHUTDOWN_GRACE='))
        ?.split('=')[1] ?? '30s',
    );
    assert.ok(stop && grace && Number(stop[1]) > Number(grace[1]), 'TimeoutStopSec must exceed the shutdown grace');
    for (const env of settings(service, 'Environment')) assert.match(env, /^BOOTSERVE_[A-Z_]+=\S+$/);
    // TFTP: bootserve binds UDP 69 itself, so the drop-in grants exactly that capability.
    const tftp = unitText('tftp.conf');
    assert.deepEqual(settings(tftp, 'Environment'), ['BOOTSERVE_TFTP=1']);
    assert.deepEqual(settings(tftp, 'AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(settings(tftp, 'CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
  });

  test('strace: every syscall and socket family bootserve uses is allowed by the unit', { timeout: 120_000 }, async (t) => {
    if (!need(t, 'strace', 'strace', ['-V'])) return;
    if (!need(t, 'systemd-analyze', 'systemd')) return;
    const service = unitText('bootserve.service');

    // Groups (@system-service, ...) as systemd-analyze knows them, expanded recursively.
    const listing = spawnSync('systemd-analyze', ['syscall-filter'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
    const groups = new Map<string, string[]>();
    let current: string[] | undefined;
    for (const line of listing.split('\n')) {
      if (/^@\S+$/.test(line)) groups.set(line, (current = []));
      else if (/^\s+[@a-z0-9_-]+$/.test(line) && current) current.push(line.trim());
      else if (!/^\s+#/.test(line)) current = undefined;
    }
    assert.ok(groups.has('@system-service'), 'systemd-analyze syscall-filter lists @system-service');
    const expand = (name: string, seen = new Set<string>()): string[] => {
      if (!name.startsWith('@')) return [name];
      if (seen.has(name)) return [];
      seen.add(name);
      const members = groups.get(name);
      assert.ok(members, `unknown syscall group ${name}`);
      return members.flatMap((m) => expand(m, seen));
    };
    const allowed = new Set<string>();
    for (const [i, value] of settings(service, 'SystemCallFilter').entries()) {
      const deny = value.startsWith('~');
      assert.ok(i > 0 || !deny, 'the first SystemCallFilter= is an allow-list');
      for (const name of value.replace(/^~/, '').split(/\s+/).flatMap((n) => expand(n))) {
        if (deny) allowed.delete(name);
        else allowed.add(name);
      }
    }
    const families = new Set(settings(service, 'RestrictAddressFamilies').flatMap((v) => v.split(/\s+/)));

    const root = artifacts(t);
    const trace = join(tempDir(t, 'bootserve-strace-'), 'trace');
    const tftpPort = await freePort();
    const child = start(
      'strace',
      [
        '-f',
        '-qq',
        '-o',
        trace,
        process.execPath,
        BIN,
        ...KEEP_ROOT,
        root,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--log-format',
        'json',
        '--shutdown-grace',
        '2s',
        '--tftp',
        '--tftp-port',
        String(tftpPort),
      ],
      { env: cleanEnv() },
    );
    // strace ignores SIGTERM while its tracee runs: signal bootserve (strace's child) itself.
    const tracee = () => childrenOf(child.proc.pid as number)[0];
    t.after(async () => {
      const pid = tracee();
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      await child.stop();
    });
    let banner: string;
    try {
      banner = await child.waitForLine(/listening on http:\/\/127\.0\.0\.1:\d+\//, 60_000);
    } catch (e) {
      if (/ptrace|Operation not permitted/.test(child.stderr()))
        return t.skip(`strace cannot trace here (ptrace not permitted): ${child.stderr().trim().split('\n')[0]}`);
      throw e;
    }
    const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)?.[1] as string;
    // The code paths a netboot server runs: files, ranges, conditionals, listing, menu, admin.
    const full = await get(`${url}/vmlinuz`);
    assert.equal(sha256(full.body), sha256(BODY));
    assert.equal((await get(`${url}/vmlinuz`, { Range: 'bytes=65536-131071' })).status, 206);
    assert.equal((await get(`${url}/vmlinuz`, { 'If-None-Match': full.headers.etag as string })).status, 304);
    assert.equal((await get(`${url}/vmlinuz`, {}, { method: 'HEAD' })).status, 200);
    assert.equal((await get(`${url}/`)).status, 200);
    assert.equal((await get(`${url}/boot.ipxe`)).status, 200);
    assert.equal((await get(`${url}/missing`)).status, 404);
    for (const p of ['healthy', 'ready', 'status', 'metrics']) assert.equal((await get(`${url}/-/${p}`)).status, 200, p);
    // TFTP (the drop-in turns it on): a plain and a windowed download.
    assert.equal(sha256((await download(tftpPort, 'vmlinuz')).data), sha256(BODY));
    assert.equal(sha256((await download(tftpPort, 'vmlinuz', { blksize: 1468, windowsize: 8, tsize: 0 })).data), sha256(BODY));
    const pid = tracee();
    assert.ok(pid, 'bootserve runs under strace');
    process.kill(pid, 'SIGTERM');
    assert.equal(await child.exited(30_000), 0, child.stderr());

    const text = readFileSync(trace, 'utf8');
    const used = new Set([...text.matchAll(/^\d+\s+([a-z0-9_]+)\(/gm)].map((m) => m[1] as string));
    assert.ok(used.has('openat') || used.has('open'), 'strace recorded syscalls');
    const forbidden = [...used].filter((s) => !allowed.has(s)).sort();
    assert.deepEqual(forbidden, [], `syscalls outside SystemCallFilter= (a kill or EPERM under systemd): ${forbidden.join(' ')}`);
    const usedFamilies = new Set([...text.matchAll(/\bsocket\((AF_[A-Z0-9]+)/g)].map((m) => m[1] as string));
    const refused = [...usedFamilies].filter((f) => !families.has(f));
    assert.deepEqual(refused, [], `socket families outside RestrictAddressFamilies=: ${refused.join(' ')}`);
  });
});

/** Pids whose parent is `ppid` (from /proc/PID/stat). */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Ports the process listens on, from its socket descriptors and /proc/net/tcp{,6}. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9] as string)) ports.push(parseInt((f[1] as string).split(':')[1] as string, 16));
    }
  }
  return ports.sort();
}

/** Serve through the inherited socket, prove no port of its own, then stop gracefully. */
async function exerciseActivated(child: Child, port: number, ownPort: number): Promise<void> {
  const banner = await child.waitForLine(/listening on http:/, 30_000);
  assert.match(banner, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}/`), 'the banner shows the inherited socket');
  const url = `http://127.0.0.1:${port}`;
  const full = await get(`${url}/vmlinuz`);
  assert.equal(full.status, 200);
  assert.equal(sha256(full.body), sha256(BODY));
  const part = await get(`${url}/vmlinuz`, { Range: 'bytes=1048570-1114111' });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(BODY.subarray(1048570, 1114112)));
  assert.equal((await get(`${url}/-/ready`)).status, 200);
  // The requests were served and logged by the child (JSON access log).
  await eventually(() => child.lines.some((l) => l.includes('"path":"/vmlinuz"') && l.includes('"status":206')), {
    timeoutMs: 5_000,
    what: 'the access log line',
  });
  if (existsSync(`/proc/${child.proc.pid}/fd`)) {
    assert.deepEqual(listeningPorts(child.proc.pid as number), [port], 'bootserve listens only on the inherited socket');
  }
  assert.notEqual(port, ownPort);
  await assert.rejects(get(`http://127.0.0.1:${ownPort}/hello.txt`, {}, { ms: 5_000 }), 'nothing bound --port');
  child.proc.kill('SIGTERM');
  assert.equal(await child.exited(20_000), 0, `graceful exit 0 on SIGTERM; stderr: ${child.stderr()}`);
}

// Bind and listen like systemd, move the socket to fd 3, set LISTEN_FDS/LISTEN_PID for our own
// pid, then exec (which keeps the pid) the command in argv[1:].
const ACTIVATE_PY = `
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('127.0.0.1', 0))
s.listen(128)
port = s.getsockname()[1]
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
    s.close()
os.set_inheritable(3, True)
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
print('activation-port', port, flush=True)
os.execv(sys.argv[1], sys.argv[1:])
`;

// What systemd does across `systemctl restart bootserve.service`: keep the listening socket,
// start the service with it, wait for it to exit, start it again with the same socket.
const SUPERVISE_PY = `
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('127.0.0.1', 0))
s.listen(128)
print('activation-port', s.getsockname()[1], flush=True)
for generation in (1, 2):
    pid = os.fork()
    if pid == 0:
        if s.fileno() != 3:
            os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)
        os.environ['LISTEN_FDS'] = '1'
        os.environ['LISTEN_PID'] = str(os.getpid())
        os.execv(sys.argv[1], sys.argv[1:])
    print('started', generation, pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print('exited', generation, os.waitstatus_to_exitcode(status), flush=True)
`;

describe('socket activation (LISTEN_FDS, fd 3)', () => {
  test('python3 passes a listening socket as fd 3: bootserve serves on it and binds nothing',
    { timeout: 90_000 }, async (t: TestContext) => {
    if (!need(t, 'python3', 'python3')) return;
    const root = artifacts(t);
    const ownPort = await freePort();
    const child = start('python3', [
      '-c', ACTIVATE_PY, process.execPath, BIN, ...KEEP_ROOT, root,
      '--host', '127.0.0.1', '--port', String(ownPort), '--log-format', 'json', '--shutdown-grace', '2s',
    ], {
      env: cleanEnv(),
    });
    t.after(() => child.stop());
    const line = await child.waitForLine(/^activation-port \d+$/, 30_000);
    const port = Number(line.split(' ')[1]);
    await exerciseActivated(child, port, ownPort);
  });

  test('restart with the socket kept open (as systemd does): no connection refused, transfers finish',
    { timeout: 90_000 }, async (t: TestContext) => {
    if (!need(t, 'python3', 'python3')) return;
    const root = artifacts(t);
    // Larger than what loopback socket buffers hold, so that the slow reader really holds it up.
    const big = randomBytes(48 * 1024 * 1024);
    writeFileSync(join(root, 'rootfs.img'), big);
    const child = start(
      'python3',
      ['-c', SUPERVISE_PY, process.execPath, BIN, ...KEEP_ROOT, root, '--log-format', 'json', '--shutdown-grace', '10s'],
      { env: cleanEnv() },
    );
    t.after(async () => {
      for (const l of child.lines) {
        const m = /^started \d+ (\d+)$/.exec(l);
        if (m) {
          try {
            process.kill(Number(m[1]), 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      await child.stop();
    });
    const port = Number((await child.waitForLine(/^activation-port \d+$/, 30_000)).split(' ')[1]);
    const first = Number((await child.waitForLine(/^started 1 \d+$/, 30_000)).split(' ')[2]);
    await child.waitForLine(/listening on http:/, 30_000);
    const url = `http://127.0.0.1:${port}`;

    // A download in progress that the client reads slowly: it keeps generation 1 in its grace.
    let started!: () => void;
    const inProgress = new Promise<void>((resolve) => (started = resolve));
    const slow = new Promise<Buffer>((resolve, reject) => {
      const req = request(`${url}/rootfs.img`, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (chunks.length === 1) {
            res.pause();
            setTimeout(() => res.resume(), 1500);
            started();
          }
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error('slow download: no progress for 30 s')));
      req.on('error', reject);
      req.end();
    });
    await inProgress;
    process.kill(first, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // Generation 1 no longer accepts; this connection waits in the backlog for generation 2.
    const stillInGrace = !child.lines.some((l) => l.startsWith('exited 1'));
    const during = get(`${url}/hello.txt`, { 'User-Agent': 'during-restart' }, { ms: 30_000 });
    assert.ok(stillInGrace, 'generation 1 was still finishing the slow download when the new connection came');
    const body = await slow;
    assert.equal(sha256(body), sha256(big), 'the transfer in progress finished during the grace');
    const r = await during;
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'hello\n');
    const exited = child.lines.findIndex((l) => l === 'exited 1 0');
    assert.ok(exited >= 0, `generation 1 exited 0: ${child.lines.filter((l) => !l.startsWith('{')).join(' | ')}`);
    await eventually(() => child.lines.some((l) => l.includes('"userAgent":"during-restart"')), {
      timeoutMs: 5_000,
      what: 'the access-log line',
    });
    const servedAt = child.lines.findIndex((l) => l.includes('"userAgent":"during-restart"'));
    const started2 = child.lines.findIndex((l) => /^started 2 /.test(l));
    assert.ok(started2 > exited && servedAt > started2, 'served by generation 2, after generation 1 had exited');
  });

  test('systemd-socket-activate: the same through systemd\'s implementation', { timeout: 90_000 }, async (t: TestContext) => {
    if (!need(t, 'systemd-socket-activate', 'systemd')) return;
    const root = artifacts(t);
    const ownPort = await freePort();
    // systemd-socket-activate cannot listen on port 0: take a free port, retry if it is taken.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const child = start(
        'systemd-socket-activate',
        [
          '-l',
          `127.0.0.1:${port}`,
          process.execPath,
          BIN,
          ...KEEP_ROOT,
          root,
          '--host',
          '127.0.0.1',
          '--port',
          String(ownPort),
          '--log-format',
          'json',
          '--shutdown-grace',
          '2s',
        ],
        {
          env: cleanEnv(),
        },
      );
      t.after(() => child.stop());
      await eventually(() => /Listening on|Failed|already in use/i.test(child.stderr()) || child.proc.exitCode !== null, {
        timeoutMs: 15_000,
        what: 'systemd-socket-activate to listen',
      });
      if (!/Listening on/.test(child.stderr())) {
        await child.stop();
        if (attempt < 3 && /in use/i.test(child.stderr())) continue;
        assert.fail(`systemd-socket-activate failed: ${child.stderr()}`);
      }
      // It waits for the first connection before it execs bootserve (like a .socket unit).
      const first = await get(`http://127.0.0.1:${port}/hello.txt`);
      assert.equal(first.body.toString(), 'hello\n');
      await exerciseActivated(child, port, ownPort);
      return;
    }
  });
});
