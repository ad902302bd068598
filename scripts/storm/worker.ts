// A client worker: runs inside the clients' namespace, plays its share of the machines, and
// writes one JSON line per machine as it ends (then exits). Started by scripts/storm.ts.
//   node --import tsx scripts/storm/worker.ts PLAN.json
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
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

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as WorkerPlan;
  // The simulator's own lateness: every phase it times includes it.
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const listeners = new Map<string, (r: DhcpReply) => void>();
  // Every worker binds 0.0.0.0:68 with SO_REUSEADDR: each gets its own copy of every broadcast.
  const port68 = createSocket({ type: 'udp4', reuseAddr: true });
  port68.on('message', (msg) => {
    const r = decodeDhcp(msg);
    if (r) listeners.get(r.mac)?.(r);
  });
  port68.on('error', (err) => process.stderr.write(`port 68: ${err.message}\n`));
  await new Promise<void>((resolve) => port68.bind({ address: '0.0.0.0', port: 68 }, () => resolve()));
  port68.setBroadcast(true);
  // A storm's DISCOVERs come within 2 s: the offers must not overflow the default buffer.
  port68.setRecvBufferSize(8 * 1024 * 1024);
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
  const usage = process.resourceUsage();
  const loop = { p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 };
  process.stdout.write(JSON.stringify({ worker: true, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, maxRssKb: usage.maxRSS, loop }) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`storm worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
