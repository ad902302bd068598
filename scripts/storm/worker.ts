// A client worker: runs inside the clients' namespace, plays its share of the machines, and
// writes one JSON line per machine as it ends (then exits). Started by scripts/storm.ts.
//   node --import tsx scripts/storm/worker.ts PLAN.json
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { runMachine, type Env, type MachinePlan } from './machine.js';
import { decodeDhcp, type DhcpReply } from './wire.js';

export interface WorkerPlan {
  server: string;
  httpPort: number;
  /** Date.now() of the storm's start: the same clock in every worker. */
  startAt: number;
  deadlineMs: number;
  files: [string, { sha256: string; size: number }][];
  machines: MachinePlan[];
}

const RECEIVER = `
const { createSocket } = require('node:dgram');
const { parentPort } = require('node:worker_threads');
const s = createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (msg) => parentPort.postMessage({ msg, at: Date.now() }));
s.bind({ address: '0.0.0.0', port: 68 }, () => {
  s.setRecvBufferSize(8 * 1024 * 1024);
  parentPort.postMessage({ msg: new Uint8Array(0), at: 0 });
});
`;

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as WorkerPlan;
  // The simulator's own lateness: every phase it times includes it.
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const listeners = new Map<string, (r: DhcpReply, atMs: number) => void>();
  // Port 68 is read on a thread of its own that stamps each offer with its arrival: this thread
  // streams and hashes hundreds of downloads, its loop may fall seconds behind, and libuv reads
  // 32 datagrams per turn; the firmware's timers are judged by when an offer came, not by when
  // this thread got round to it. Every worker binds 0.0.0.0:68 with SO_REUSEADDR: each gets its
  // own copy of every broadcast, as every NIC on a LAN does.
  const receiver = new Worker(RECEIVER, { eval: true });
  receiver.on('message', (m: { msg: Uint8Array; at: number }) => {
    const r = decodeDhcp(Buffer.from(m.msg));
    if (r) listeners.get(r.mac)?.(r, m.at - plan.startAt);
  });
  receiver.on('error', (err) => process.stderr.write(`port 68: ${err.message}\n`));
  await new Promise<void>((resolve) => receiver.once('message', () => resolve()));
  // DISCOVERs leave from a port of their own (servers answer to 68 whatever the source port).
  const port68 = createSocket({ type: 'udp4' });
  await new Promise<void>((resolve) => port68.bind({ address: '0.0.0.0', port: 0 }, () => resolve()));
  port68.setBroadcast(true);
  const env: Env = {
    server: plan.server,
    httpPort: plan.httpPort,
    broadcast: (packet) =>
      port68.send(packet, 67, '255.255.255.255', (err) => {
        if (err) process.stderr.write(`DISCOVER not sent: ${err.message}\n`);
      }),
    listen: (mac, handler) => {
      listeners.set(mac, handler);
      return () => {
        if (listeners.get(mac) === handler) listeners.delete(mac);
      };
    },
    files: new Map(plan.files),
    now: () => Date.now() - plan.startAt,
    deadlineMs: plan.deadlineMs,
  };
  await Promise.all(
    plan.machines.map(async (m) => {
      const result = await runMachine(m, env);
      process.stdout.write(JSON.stringify(result) + '\n');
    }),
  );
  port68.close();
  await receiver.terminate();
  const usage = process.resourceUsage();
  const loop = { p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 };
  process.stdout.write(
    JSON.stringify({ worker: true, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, maxRssKb: usage.maxRSS, loop }) + '\n',
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`storm worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
