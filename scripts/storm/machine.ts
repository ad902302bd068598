// One simulated machine: its firmware's timers from power-on to a booted kernel, every byte checked.
// The timers are those of ../../../shared/pxe-notes.md ("Firmware timers that decide a boot storm"):
//   edk2 PXE:  DISCOVER, collect offers until the timer (4, 8, 16, 32 s) runs out; 4011 request from
//              its own address, port 4011, at 0, 1, 3, 6 s; TFTP size probe (tsize 0 blksize 1468
//              windowsize 4), ERROR 8, then the read (blksize 1468 windowsize 4); 4 s × 6 sends,
//              the count restarting with every packet that moves the transfer; any ERROR fails.
//   BIOS ROM:  the same DISCOVER timers; with option 43 discovery control 8 it boots the offer's
//              file, else asks the boot server on 4011 from port 68; lockstep TFTP, blksize 1456.
//   iPXE:      DISCOVERs at 0 and 1 s; a proxy offer by 3 s or "Nothing to boot"; then HTTP on one
//              keep-alive connection: the script, then kernel and initrd, each tried 5 times 3 s
//              apart (the script's retries), a 5xx with Retry-After waited out and tried again
//              (5 s when unparsable), a connection not made in 15 s a failed try.
// The LAN's own DHCP server (addresses) is not simulated: every machine has its address at once.
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { Agent, request, type IncomingMessage } from 'node:http';
import { ack, decodeDhcp, decodeTftp, encodeDhcp, MSG, OPT, pxeVendorOf, rrq, tftpError, type DhcpReply } from './wire.js';

export type Firmware = 'uefi' | 'bios' | 'ipxe';
export type Phase = 'dhcp' | 'proxy' | 'tftp' | 'ipxe-dhcp' | 'script' | 'kernel' | 'initrd';
export const PHASES: readonly Phase[] = ['dhcp', 'proxy', 'tftp', 'ipxe-dhcp', 'script', 'kernel', 'initrd'];

export interface MachinePlan {
  id: number;
  mac: string;
  ip: string;
  firmware: Firmware;
  /** Milliseconds after the storm's start. */
  powerOnMs: number;
}

export interface MachineResult {
  id: number;
  firmware: Firmware;
  outcome: 'booted' | 'failed';
  /** Where it stopped and why (failed only). */
  failedIn?: Phase;
  reason?: string;
  /** Milliseconds spent in each phase it went through. */
  phases: Partial<Record<Phase, number>>;
  /** Milliseconds after the storm's start at which it booted. */
  bootedAtMs?: number;
  /** Firmware-level retries: DHCP rounds, 4011 and TFTP resends, HTTP retries. */
  retries: number;
  /** 503s waited out (Retry-After). */
  paused: number;
}

/** What every machine shares: the port-68 socket, the server, the files' digests, the clock. */
export interface Env {
  server: string;
  httpPort: number;
  /** Sends a DISCOVER (broadcast to 67). */
  broadcast(packet: Buffer): void;
  /**
   * Replies arriving on port 68 for this MAC go to `handler`, with the time they arrived (ms
   * after the storm's start), until the returned function is called.
   */
  listen(mac: string, handler: (reply: DhcpReply, atMs: number) => void): () => void;
  /** sha256 (hex) and size of each file by name (the last path segment). */
  files: Map<string, { sha256: string; size: number }>;
  /** Milliseconds since the storm's start. */
  now(): number;
  /** The run's end: whatever has not booted by then fails with 'run timeout'. */
  deadlineMs: number;
}

class Failure extends Error {
  constructor(
    readonly phase: Phase,
    reason: string,
  ) {
    super(reason);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
/**
 * A firmware timer has run out: first let the datagrams and data already here be read. Timers
 * run before I/O in a turn of the event loop, so when the simulator itself falls behind (a
 * turn of seconds under load), an answer that came in time would otherwise lose to the timer
 * and the server be blamed for the simulator's lateness.
 */
const settle = () => new Promise<void>((r) => setImmediate(r));
/** A timer for `ms`, then settle(). */
const expire = async (ms: number) => {
  await sleep(ms);
  await settle();
};

export async function runMachine(plan: MachinePlan, env: Env): Promise<MachineResult> {
  const result: MachineResult = { id: plan.id, firmware: plan.firmware, outcome: 'failed', phases: {}, retries: 0, paused: 0 };
  const mac = Buffer.from(plan.mac.split(':').map((h) => parseInt(h, 16)));
  const arch = plan.firmware === 'bios' ? 0 : plan.firmware === 'uefi' ? 7 : plan.id % 2 === 0 ? 7 : 0;
  let phase: Phase = 'dhcp';
  let phaseStart = 0;
  const enter = (next: Phase) => {
    phase = next;
    phaseStart = env.now();
  };
  const leave = () => (result.phases[phase] = env.now() - phaseStart);
  const ctx: Ctx = { plan, env, mac, arch, result, fail: (reason) => new Failure(phase, reason) };
  await sleep(plan.powerOnMs - env.now());
  const agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress: plan.ip } as ConstructorParameters<typeof Agent>[0]);
  try {
    if (plan.firmware !== 'ipxe') {
      enter('dhcp');
      const offer = await firmwareDiscover(ctx);
      leave();
      let bootFile = offer.file || offer.options.get(OPT.bootFile)?.toString('latin1').replace(/\0.*$/s, '') || '';
      let tftpServer = offer.siaddr !== '0.0.0.0' ? offer.siaddr : ipOf(offer.options.get(OPT.serverId));
      const vendor = pxeVendorOf(offer.options.get(OPT.vendorSpecific));
      const direct = vendor.discoveryControl !== undefined && (vendor.discoveryControl & 8) !== 0 && bootFile !== '';
      if (!direct) {
        enter('proxy');
        const ackReply = await bootServerRequest(ctx, offer, vendor.firstItemType);
        leave();
        bootFile = ackReply.file || ackReply.options.get(OPT.bootFile)?.toString('latin1').replace(/\0.*$/s, '') || '';
        tftpServer = ackReply.siaddr !== '0.0.0.0' ? ackReply.siaddr : ipOf(ackReply.options.get(OPT.serverId)) || tftpServer;
      }
      if (!bootFile) throw ctx.fail('no boot file in the reply');
      enter('tftp');
      const nbp = plan.firmware === 'uefi' ? await edk2Tftp(ctx, tftpServer, bootFile) : await biosTftp(ctx, tftpServer, bootFile);
      checkDigest(ctx, lastSegment(bootFile), nbp.sha256, nbp.size);
      leave();
    }
    enter('ipxe-dhcp');
    const proxy = await ipxeDiscover(ctx);
    leave();
    const scriptUrl = proxy.file || proxy.options.get(OPT.bootFile)?.toString('latin1').replace(/\0.*$/s, '') || '';
    if (!scriptUrl.startsWith('http://')) throw ctx.fail(`iPXE got no HTTP URL: '${scriptUrl}'`);
    enter('script');
    const script = await httpFetch(ctx, agent, scriptUrl, 'autoboot');
    checkDigest(ctx, lastSegment(scriptUrl), script.sha256, script.size);
    leave();
    const text = script.body?.toString('utf8') ?? '';
    const kernel = /^kernel\s+(?:--\S+\s+)*(\S+)/m.exec(text)?.[1];
    const initrd = /^initrd\s+(?:--\S+\s+)*(\S+)/m.exec(text)?.[1];
    if (!kernel || !initrd) throw ctx.fail('the script names no kernel or initrd');
    enter('kernel');
    const k = await httpFetch(ctx, agent, absolute(kernel, scriptUrl), 'script');
    checkDigest(ctx, lastSegment(kernel), k.sha256, k.size);
    leave();
    enter('initrd');
    const i = await httpFetch(ctx, agent, absolute(initrd, scriptUrl), 'script');
    checkDigest(ctx, lastSegment(initrd), i.sha256, i.size);
    leave();
    result.outcome = 'booted';
    result.bootedAtMs = env.now();
  } catch (err) {
    result.failedIn = err instanceof Failure ? err.phase : phase;
    result.reason = err instanceof Error ? err.message : String(err);
  } finally {
    agent.destroy();
  }
  return result;
}

interface Ctx {
  plan: MachinePlan;
  env: Env;
  mac: Buffer;
  arch: number;
  result: MachineResult;
  fail(reason: string): Failure;
}

const lastSegment = (url: string) => url.slice(url.lastIndexOf('/') + 1);
const absolute = (url: string, base: string) => new URL(url, base).href;
const ipOf = (b: Buffer | undefined) => (b && b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : '');

function checkDigest(ctx: Ctx, name: string, sha256: string, size: number): void {
  const want = ctx.env.files.get(name);
  if (!want) throw ctx.fail(`unknown file ${name}`);
  if (want.size !== size || want.sha256 !== sha256) throw ctx.fail(`${name}: sha256 mismatch (${size} of ${want.size} bytes)`);
}

function pxeOptions(ctx: Ctx, vendorClass: string, ipxe: boolean): [number, Buffer][] {
  const archBytes = Buffer.alloc(2);
  archBytes.writeUInt16BE(ctx.arch);
  const guid = Buffer.alloc(17);
  guid[0] = 0;
  guid.writeUInt32BE(ctx.plan.id, 13);
  const options: [number, Buffer][] = [
    [OPT.vendorClass, Buffer.from(vendorClass)],
    [OPT.arch, archBytes],
    [OPT.nic, Buffer.from([1, 3, 0])],
    [OPT.guid, guid],
  ];
  if (ipxe) options.push([OPT.userClass, Buffer.from('iPXE')], [OPT.ipxe, Buffer.from([0x13, 0x01, 0x01])]);
  return options;
}

const isProxyOffer = (r: DhcpReply, xid: number) =>
  r.op === 2 &&
  r.xid === xid &&
  r.yiaddr === '0.0.0.0' &&
  r.options.get(OPT.messageType)?.[0] === MSG.offer &&
  r.options.has(OPT.serverId) &&
  (r.options.get(OPT.vendorClass)?.toString('latin1').startsWith('PXEClient') ?? false);

/**
 * edk2 and PXE 2.1 ROMs: DISCOVER, collect offers until the timer runs out (4, 8, 16, 32 s), then
 * choose the first proxy offer; none after the 4th: PXE-E16.
 */
async function firmwareDiscover(ctx: Ctx): Promise<DhcpReply> {
  const xid = (0x10000000 + ctx.plan.id * 16) >>> 0;
  let offer: DhcpReply | undefined;
  let offerAt = Infinity;
  const stop = ctx.env.listen(ctx.plan.mac, (r, atMs) => {
    if (!offer && isProxyOffer(r, xid)) {
      offer = r;
      offerAt = atMs;
    }
  });
  try {
    const packet = encodeDhcp({
      xid,
      mac: ctx.mac,
      ciaddr: '0.0.0.0',
      flags: ctx.plan.firmware === 'uefi' ? 0x8000 : 0,
      options: [
        [OPT.messageType, Buffer.from([MSG.discover])],
        ...pxeOptions(ctx, `PXEClient:Arch:${String(ctx.arch).padStart(5, '0')}:UNDI:002001`, false),
      ],
    });
    for (const [round, seconds] of [4, 8, 16, 32].entries()) {
      if (round > 0) ctx.result.retries++;
      ctx.env.broadcast(packet);
      const roundEnd = ctx.env.now() + seconds * 1000;
      await expire(seconds * 1000);
      // An offer that came during this round is chosen at its end; a later one, at the next.
      if (offer && offerAt <= roundEnd) return offer;
      if (ctx.env.now() > ctx.env.deadlineMs) break;
    }
  } finally {
    stop();
  }
  throw ctx.fail('no proxy offer after 4 DISCOVERs (PXE-E16)');
}

/** The boot-server request on 4011: from the machine's address, port 4011 (edk2) or 68 (BIOS), at 0, 1, 3, 6 s. */
async function bootServerRequest(ctx: Ctx, offer: DhcpReply, itemType: number | undefined): Promise<DhcpReply> {
  const server = ipOf(offer.options.get(OPT.serverId)) || offer.siaddr;
  const xid = (0x20000000 + ctx.plan.id * 16) >>> 0;
  const options: [number, Buffer][] = [
    [OPT.messageType, Buffer.from([MSG.request])],
    ...pxeOptions(ctx, `PXEClient:Arch:${String(ctx.arch).padStart(5, '0')}:UNDI:002001`, false),
  ];
  if (itemType !== undefined) options.push([OPT.vendorSpecific, Buffer.from([71, 4, itemType >> 8, itemType & 0xff, 0, 0, 255])]);
  const packet = encodeDhcp({ xid, mac: ctx.mac, ciaddr: ctx.plan.ip, flags: 0, options });
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  let answer: DhcpReply | undefined;
  let wake: () => void = () => {};
  socket.on('message', (msg) => {
    const r = decodeDhcp(msg);
    if (r && r.op === 2 && r.xid === xid && r.options.get(OPT.messageType)?.[0] === MSG.ack) {
      answer = r;
      wake();
    }
  });
  socket.on('error', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: ctx.plan.ip, port: ctx.plan.firmware === 'bios' ? 68 : 4011 }, () => resolve());
    });
    for (let attempt = 1; attempt <= 4; attempt++) {
      if (attempt > 1) ctx.result.retries++;
      socket.send(packet, 4011, server);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(() => setImmediate(resolve), attempt * 1000);
      });
      if (answer) return answer;
    }
  } catch (err) {
    throw ctx.fail(`4011: ${(err as Error).message}`);
  } finally {
    socket.close();
  }
  throw ctx.fail('no answer to 4 boot-server requests (PXE-E16)');
}

interface Fetched {
  sha256: string;
  size: number;
  body?: Buffer;
}

/**
 * One TFTP read from the machine's own address and a new port. The first reply's port is the
 * server's TID. Lockstep when windowsize is 1. Resends its last packet every 4 s, 6 sends at
 * most without progress. 'probe': only the OACK's tsize is wanted, then ERROR 8.
 */
async function tftpRead(ctx: Ctx, server: string, file: string, options: [string, string][], mode: 'probe' | 'read'): Promise<Fetched> {
  // What the server granted (its OACK) counts, not what was asked; no OACK: RFC 1350's 512, lockstep.
  let blksize = 512;
  let windowsize = 1;
  const socket = createSocket('udp4');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind({ address: ctx.plan.ip, port: 0 }, () => resolve()));
  const hash = createHash('sha256');
  let size = 0;
  let tid: number | undefined;
  let expected = 1; // next block (absolute)
  let lastPacket = rrq(file, options);
  let sends = 0;
  /** Packets that moved the transfer: a timer armed before one of them has nothing to resend. */
  let moves = 0;
  let timer: NodeJS.Timeout | undefined;
  return await new Promise<Fetched>((resolve, reject) => {
    let ended = false;
    const end = (error?: Failure, value?: Fetched) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(value as Fetched);
    };
    // The firmware's timer: 4 s after the last packet that moved the transfer, its last packet
    // again; the 6th send without progress fails the boot.
    const arm = () => {
      clearTimeout(timer);
      const armedAt = moves;
      timer = setTimeout(() => setImmediate(() => {
        if (ended) return;
        // Packets read in the meantime (settle(), above) moved the transfer: a new 4 s.
        if (moves !== armedAt) return arm();
        if (ctx.env.now() > ctx.env.deadlineMs) return end(ctx.fail('run timeout'));
        if (sends >= 6) return end(ctx.fail(`TFTP timeout (${mode === 'probe' ? 'size probe' : 'read'} of ${file}, 6 sends)`));
        ctx.result.retries++;
        send(lastPacket, false);
      }), 4000);
    };
    const send = (packet: Buffer, moved: boolean) => {
      lastPacket = packet;
      if (moved) {
        sends = 0;
        moves++;
      }
      sends++;
      socket.send(packet, tid ?? 69, server);
      arm();
    };
    socket.on('message', (msg, rinfo) => {
      if (ended || rinfo.address !== server) return;
      if (tid === undefined) tid = rinfo.port;
      else if (rinfo.port !== tid) return socket.send(tftpError(5, 'unknown transfer ID'), rinfo.port, rinfo.address);
      const p = decodeTftp(msg);
      if (p.op === 'error') return end(ctx.fail(`TFTP ERROR ${p.code} '${p.message}' (${mode === 'probe' ? 'size probe' : 'read'})`));
      if (p.op === 'oack') {
        if (expected !== 1) return;
        if (mode === 'probe') {
          const tsize = Number(p.options.get('tsize'));
          // Closed only once sent: a close cancels a send still queued.
          return socket.send(tftpError(8, 'tsize only'), tid, server, () => end(undefined, { sha256: '', size: tsize }));
        }
        blksize = Number(p.options.get('blksize') ?? 512);
        windowsize = Number(p.options.get('windowsize') ?? 1);
        return send(ack(0), true);
      }
      if (p.op !== 'data') return;
      if (mode === 'probe') return end(ctx.fail('DATA instead of an OACK to the size probe'));
      if (p.block !== (expected & 0xffff)) return; // out of order or a resend: our timer recovers
      hash.update(p.data);
      size += p.data.length;
      const last = p.data.length < blksize;
      const windowEnd = expected % windowsize === 0;
      expected++;
      if (last) {
        const digest = hash.digest('hex');
        clearTimeout(timer);
        return socket.send(ack(p.block), tid, server, () => end(undefined, { sha256: digest, size }));
      }
      if (windowEnd) send(ack(p.block), true);
      else {
        sends = 0; // a packet that moved the transfer restarts the count
        moves++;
      }
    });
    send(lastPacket, true);
  });
}

async function edk2Tftp(ctx: Ctx, server: string, file: string): Promise<Fetched> {
  const probe = await tftpRead(ctx, server, file, [['tsize', '0'], ['blksize', '1468'], ['windowsize', '4']], 'probe');
  const read = await tftpRead(ctx, server, file, [['blksize', '1468'], ['windowsize', '4']], 'read');
  if (probe.size !== read.size) throw ctx.fail(`tsize ${probe.size} but ${read.size} bytes read`);
  return read;
}

function biosTftp(ctx: Ctx, server: string, file: string): Promise<Fetched> {
  return tftpRead(ctx, server, file, [['tsize', '0'], ['blksize', '1456']], 'read');
}

/** iPXE: DISCOVERs at 0 and 1 s; a proxy offer by 3 s, else "Nothing to boot". */
async function ipxeDiscover(ctx: Ctx): Promise<DhcpReply> {
  const xid = (0x30000000 + ctx.plan.id * 16) >>> 0;
  let offer: DhcpReply | undefined;
  let offerAt = Infinity;
  let wake: () => void = () => {};
  const started = ctx.env.now();
  const stop = ctx.env.listen(ctx.plan.mac, (r, atMs) => {
    if (!offer && isProxyOffer(r, xid)) {
      offer = r;
      offerAt = atMs;
      wake();
    }
  });
  const packet = encodeDhcp({
    xid,
    mac: ctx.mac,
    ciaddr: '0.0.0.0',
    flags: 0,
    options: [
      [OPT.messageType, Buffer.from([MSG.discover])],
      ...pxeOptions(ctx, `PXEClient:Arch:${String(ctx.arch).padStart(5, '0')}:UNDI:002001`, true),
    ],
  });
  try {
    for (const wait of [1000, 2000]) {
      ctx.env.broadcast(packet);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(() => setImmediate(resolve), wait);
      });
      // Judged by when the offer came, not when this thread read it.
      if (offer && offerAt <= started + 3000) return offer;
      ctx.result.retries++;
    }
  } finally {
    stop();
  }
  throw ctx.fail('no proxy offer within 3 s (iPXE: Nothing to boot)');
}

type HttpAnswer = { kind: 'ok'; fetched: Fetched } | { kind: 'retry-after'; seconds: number } | { kind: 'failed'; reason: string };

/**
 * One file over the machine's keep-alive connection. 'autoboot' (the script itself): iPXE tries
 * once; 'script' (kernel, initrd): 5 tries 3 s apart. A 5xx with Retry-After is waited out and
 * does not count as a try.
 */
async function httpFetch(ctx: Ctx, agent: Agent, url: string, policy: 'autoboot' | 'script'): Promise<Fetched> {
  const tries = policy === 'script' ? 5 : 1;
  let lastReason = '';
  for (let attempt = 1; attempt <= tries; ) {
    if (ctx.env.now() > ctx.env.deadlineMs) throw ctx.fail('run timeout');
    const answer = await httpGet(ctx, agent, url, policy === 'autoboot');
    if (answer.kind === 'ok') return answer.fetched;
    if (answer.kind === 'retry-after') {
      ctx.result.paused++;
      await sleep(answer.seconds * 1000);
      continue;
    }
    lastReason = answer.reason;
    attempt++;
    if (attempt <= tries) {
      ctx.result.retries++;
      await sleep(3000);
    }
  }
  throw ctx.fail(lastReason);
}

function httpGet(ctx: Ctx, agent: Agent, url: string, keepBody: boolean): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: HttpAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      if (a.kind !== 'ok' && a.kind !== 'retry-after' && a.reason === 'run timeout') req.destroy();
      resolve(a);
    };
    const req = request(url, { agent, headers: { 'user-agent': 'iPXE/1.21.1 (storm)' } }, (res: IncomingMessage) => {
      clearTimeout(connectTimer);
      const status = res.statusCode ?? 0;
      if (status >= 500) {
        const header = res.headers['retry-after'];
        res.resume();
        if (header === undefined) return done({ kind: 'failed', reason: `HTTP ${status} without Retry-After` });
        const seconds = /^\d+$/.test(header) ? Number(header) : 5;
        return done({ kind: 'retry-after', seconds });
      }
      if (status !== 200) {
        res.resume();
        return done({ kind: 'failed', reason: `HTTP ${status}` });
      }
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        size += c.length;
        if (keepBody) chunks.push(c);
      });
      res.on('end', () =>
        done({ kind: 'ok', fetched: { sha256: hash.digest('hex'), size, ...(keepBody ? { body: Buffer.concat(chunks) } : {}) } }),
      );
      res.on('error', (err) => done({ kind: 'failed', reason: `HTTP body: ${err.message}` }));
      res.on('aborted', () => done({ kind: 'failed', reason: 'HTTP body cut' }));
    });
    // iPXE's TCP connect gives up after about 15 s.
    const connectTimer = setTimeout(() => setImmediate(() => {
      if (settled || req.socket?.connecting === false) return;
      done({ kind: 'failed', reason: 'HTTP: no connection in 15 s' });
      req.destroy();
    }), 15_000);
    req.on('socket', (s) => (s.connecting ? s.once('connect', () => clearTimeout(connectTimer)) : clearTimeout(connectTimer)));
    // Nothing outlives the run: a transfer still going at its end fails.
    const deadline = setTimeout(() => {
      done({ kind: 'failed', reason: 'run timeout' });
      req.destroy();
    }, ctx.env.deadlineMs - ctx.env.now());
    req.on('close', () => clearTimeout(deadline));
    req.on('error', (err) => done({ kind: 'failed', reason: `HTTP: ${(err as NodeJS.ErrnoException).code ?? err.message}` }));
    req.end();
  });
}
