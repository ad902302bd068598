// proxyDHCP on a thread of its own. Under a boot storm the main thread streams HTTP, and each
// turn of its event loop took 0.1-0.6 s (1.5 s at worst) on a busy 2-core host; libuv reads at
// most 32 datagrams from a socket per turn, so iPXE's DISCOVERs waited in the socket for seconds
// and iPXE, which waits about 3 s for a proxy offer, said "Nothing to boot" (26 of 500 machines).
// A thread that mostly sleeps is woken at once by the kernel's scheduler and answers in
// microseconds, whatever the HTTP side does. The service is the same (server.ts, the same
// policy, limiter, logs and counters); only its records and counters travel by message.
import type { Worker } from 'node:worker_threads';
import { startWorker, stopWorker } from '../thread.js';
import { BindError, type BindTarget } from '../net/bind.js';
import { info, type BannerLine } from '../service.js';
import type { Firmware } from '../netboot/ipxe.js';
import type { DhcpRecord } from '../observe/log.js';
import type { ClientKind, IgnoreReason } from './policy.js';
import type { DhcpOptions, DhcpService, Endpoint } from './server.js';
import { DhcpStats } from './stats.js';

const FIRMWARES: readonly Firmware[] = ['bios', 'efi-ia32', 'efi-x64', 'efi-arm32', 'efi-arm64'];
/** How long shutdown waits for the thread to close its sockets before ending it. */
const STOP_WAIT_MS = 2000;

/** What the thread is started with: DhcpOptions without functions. */
export interface ThreadData {
  serverAddress: string;
  httpPort: number;
  binaries: [Firmware, string][];
  dhcp?: Endpoint | undefined;
  proxyAddresses?: string[] | undefined;
  proxyPort?: number | undefined;
  broadcast?: Endpoint | undefined;
  relayPort?: number | undefined;
  ignoredLogPerSecond?: number | undefined;
}

/** From the thread. */
export type ThreadMessage =
  | { kind: 'started'; ports: { dhcp: number; proxy: number } }
  | { kind: 'failed'; message: string; bind?: { target: BindTarget; code: string | undefined } }
  | { kind: 'log'; record: DhcpRecord }
  | { kind: 'error'; message: string }
  | { kind: 'stats'; answers: [ClientKind, number][]; ignored: [IgnoreReason, number][] }
  | { kind: 'stopped' };

/** The proxyDHCP service, run on a worker thread. Options with a limiter or a clock stay on this thread (tests). */
export function createThreadedDhcpService(options: DhcpOptions): DhcpService {
  const stats = new DhcpStats();
  let ports = { dhcp: 0, proxy: 0 };
  let advertised: string | undefined;
  let worker: Worker | undefined;
  let stopped: Promise<void> | undefined;

  const apply = (m: Extract<ThreadMessage, { kind: 'stats' }>) => {
    for (const [k, n] of m.answers) stats.answers.add(k, n - stats.answers.get(k));
    for (const [k, n] of m.ignored) stats.ignored.add(k, n - stats.ignored.get(k));
  };

  return {
    name: 'dhcp',
    stats,
    ports: () => ports,
    start() {
      const policy = options.policy();
      advertised = policy.serverAddress;
      const data: ThreadData = {
        serverAddress: policy.serverAddress,
        httpPort: policy.httpPort,
        binaries: FIRMWARES.flatMap((f): [Firmware, string][] => {
          const b = policy.binaryFor(f);
          return b ? [[f, b.name]] : [];
        }),
        dhcp: options.dhcp,
        proxyAddresses: options.proxyAddresses,
        proxyPort: options.proxyPort,
        broadcast: options.broadcast,
        relayPort: options.relayPort,
        ignoredLogPerSecond: options.ignoredLogPerSecond,
      };
      const w = startWorker(import.meta.url, 'thread-worker', data);
      worker = w;
      return new Promise<void>((resolve, reject) => {
        w.on('message', (m: ThreadMessage) => {
          switch (m.kind) {
            case 'started':
              ports = m.ports;
              return resolve();
            case 'failed':
              void w.terminate();
              // The thread's one-line message, as a BindError again (main prints those as they are).
              const failure = m.bind
                ? Object.assign(new BindError(m.bind.target, m.bind.code, ''), { message: m.message })
                : new Error(m.message);
              return reject(failure);
            case 'log':
              return options.log(m.record);
            case 'error':
              return options.error(m.message);
            case 'stats':
              return apply(m);
            case 'stopped':
              return;
          }
        });
        w.on('error', (err) => {
          options.error(`DHCP thread: ${err.message}`);
          reject(err);
        });
      });
    },
    banner: (): BannerLine[] => [
      info(
        `proxyDHCP: answering PXE and HTTP Boot clients on UDP ${ports.dhcp} and ${advertised}:${ports.proxy}, advertising ${advertised}`,
      ),
    ],
    metrics: () => stats.families(),
    status: () => ({ advertised: advertised ?? null, ports, thread: true }),
    shutdown: () =>
      (stopped ??= (async () => {
        const w = worker;
        if (!w) return;
        await stopWorker(w, 'stop', STOP_WAIT_MS);
      })()),
  };
}
