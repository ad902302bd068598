// TFTP on a thread of its own. Lockstep and small-window firmware sends one ACK per window and
// waits for the next: each round trip costs a turn of the event loop. Under a boot storm the
// main thread streams HTTP and its turns took 0.1-0.6 s, so a 170 KiB snponly.efi took 2.5 s
// (4-8 ms alone) and a lockstep undionly.kpxe 4.7 s (p95 9.5 s). On a thread that only does
// TFTP the round trip is the network's again. The service is the same (server.ts: admission,
// pacing, transfers, records); its records, the transfer list's entries and its counters travel
// by message, and the transfer list on this thread mirrors the thread's.
import type { Worker } from 'node:worker_threads';
import { startWorker, stopWorker } from '../thread.js';
import { BindError, type BindTarget } from '../net/bind.js';
import type { AccessRecord } from '../observe/log.js';
import type { TransferOutcome } from '../observe/outcomes.js';
import type { ActiveTransfer } from '../observe/transfers.js';
import { info, warn, type BannerLine } from '../service.js';
import type { TftpDeps, TftpOptions, TftpService } from './server.js';
import { TftpStats, type QueueFigures } from './stats.js';

/** How long shutdown waits beyond the grace for the thread to record what it stopped. */
const STOP_EXTRA_MS = 4000;

export interface TftpThreadData {
  options: TftpOptions;
  root: string;
  /** Build the iPXE fallback on the thread (netboot/ipxe.ts) from the same inputs as app.ts. */
  ipxe: { ipxeDir: string | undefined } | undefined;
}

/** A counters snapshot: every figure TftpStats keeps. */
export interface StatsSnapshot {
  byOutcome: [string, number][];
  refused: [string, number][];
  ignored: [string, number][];
  waited: [string, number][];
  bytesSent: number;
  retransmissions: number;
  admittedAfterWaiting: number;
  longestAdmittedWaitMs: number;
  queue: QueueFigures;
}

export type TftpThreadMessage =
  | { kind: 'started'; addresses: { address: string; port: number }[]; banner: BannerLine[] }
  | { kind: 'failed'; message: string; bind?: { target: BindTarget; code: string | undefined } }
  | { kind: 'access'; record: AccessRecord }
  | { kind: 'error'; message: string }
  | { kind: 'info'; message: string }
  | { kind: 'begin'; id: number; transfer: Pick<ActiveTransfer, 'protocol' | 'client' | 'path' | 'range' | 'bytesDue'> }
  | { kind: 'progress'; list: [number, number, number][] }
  | { kind: 'end'; id: number; outcome: TransferOutcome; extra: { status?: number; detail?: string }; bytesSent: number }
  | { kind: 'stats'; stats: StatsSnapshot }
  | { kind: 'shed' }
  | { kind: 'stopped' };

export type ThreadedTftpDeps = Omit<TftpDeps, 'fallback'> & { ipxe: TftpThreadData['ipxe'] };

export function createThreadedTftpService(options: TftpOptions, deps: ThreadedTftpDeps): TftpService {
  const stats = new TftpStats();
  let queue: QueueFigures = { waiting: 0, oldestWaitMs: 0 };
  let addresses: { address: string; port: number }[] = [];
  let banner: BannerLine[] = [];
  let worker: Worker | undefined;
  let stopped: Promise<void> | undefined;
  const mirrors = new Map<number, ActiveTransfer>();

  const set = <K extends string>(tally: { get(k: K): number; add(k: K, n?: number): void }, entries: [string, number][]) => {
    for (const [k, n] of entries) tally.add(k as K, n - tally.get(k as K));
  };
  const apply = (s: StatsSnapshot) => {
    set(stats.byOutcome, s.byOutcome);
    set(stats.refused, s.refused);
    set(stats.ignored, s.ignored);
    set(stats.waited, s.waited);
    stats.bytesSent = s.bytesSent;
    stats.retransmissions = s.retransmissions;
    stats.admittedAfterWaiting = s.admittedAfterWaiting;
    stats.longestAdmittedWaitMs = s.longestAdmittedWaitMs;
    queue = s.queue;
  };

  const receive = (m: TftpThreadMessage) => {
    switch (m.kind) {
      case 'access':
        return deps.logger.access(m.record);
      case 'error':
        return deps.logger.error(m.message);
      case 'info':
        return deps.logger.info(m.message);
      case 'begin':
        return void mirrors.set(m.id, deps.transfers.begin(m.transfer));
      case 'progress':
        for (const [id, bytesSent, lastProgressAt] of m.list) {
          const t = mirrors.get(id);
          if (t) Object.assign(t, { bytesSent, lastProgressAt });
        }
        return;
      case 'end': {
        const t = mirrors.get(m.id);
        if (!t) return;
        mirrors.delete(m.id);
        t.bytesSent = m.bytesSent;
        return void deps.transfers.end(t, m.outcome, m.extra);
      }
      case 'stats':
        return apply(m.stats);
      case 'shed':
        return deps.shed?.();
      default:
        return;
    }
  };

  return {
    name: 'tftp',
    stats,
    addresses: () => addresses,
    start() {
      const data: TftpThreadData = { options, root: deps.root, ipxe: deps.ipxe };
      const w = startWorker(import.meta.url, 'thread-worker', data);
      worker = w;
      return new Promise<void>((resolve, reject) => {
        w.on('message', (m: TftpThreadMessage) => {
          if (m.kind === 'started') {
            addresses = m.addresses;
            banner = m.banner;
            return resolve();
          }
          if (m.kind === 'failed') {
            void w.terminate();
            // The thread's one-line message, as a BindError again (main prints those as they are).
            const failure = m.bind
              ? Object.assign(new BindError(m.bind.target, m.bind.code, ''), { message: m.message })
              : new Error(m.message);
            return reject(failure);
          }
          receive(m);
        });
        w.on('error', (err) => {
          deps.logger.error(`TFTP thread: ${err.message}`);
          reject(err);
        });
      });
    },
    banner: () => banner.map((b) => (b.level === 'warn' ? warn(b.text) : info(b.text))),
    metrics: () => stats.families(deps.transfers, queue),
    status: () => ({
      addresses,
      activeTransfers: mirrors.size,
      queue: { waiting: queue.waiting, oldestWaitSeconds: queue.oldestWaitMs / 1000 },
      thread: true,
    }),
    shutdown: (graceMs) =>
      (stopped ??= (async () => {
        const w = worker;
        if (!w) return;
        await stopWorker(w, { stop: graceMs }, graceMs + STOP_EXTRA_MS);
      })()),
  };
}
