// The TFTP thread's entry (see thread.ts): the ordinary service, with a transfer list whose
// entries, and records and counters, are posted to the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { BindError } from '../net/bind.js';
import { findIpxeBinaries } from '../netboot/ipxe.js';
import type { TransferOutcome } from '../observe/outcomes.js';
import { Transfers, type ActiveTransfer, type FinishedTransfer } from '../observe/transfers.js';
import { createTftpService } from './server.js';
import type { StatsSnapshot, TftpThreadData, TftpThreadMessage } from './thread.js';

const port = parentPort;
if (!port) throw new Error('thread-worker.ts runs as a worker thread only');
const data = workerData as TftpThreadData;
const post = (m: TftpThreadMessage) => port.postMessage(m);

/** The thread's transfer list; every begin and end is posted (progress every PROGRESS_MS). */
class PostedTransfers extends Transfers {
  override begin(t: Pick<ActiveTransfer, 'protocol' | 'client' | 'path' | 'range' | 'bytesDue'>): ActiveTransfer {
    const transfer = super.begin(t);
    post({ kind: 'begin', id: transfer.id, transfer: t });
    return transfer;
  }

  override end(t: ActiveTransfer, outcome: TransferOutcome, extra: { status?: number; detail?: string } = {}, listed = true) {
    const finished: FinishedTransfer = super.end(t, outcome, extra, listed);
    post({ kind: 'end', id: t.id, outcome, extra, bytesSent: t.bytesSent });
    return finished;
  }
}
const PROGRESS_MS = 250;

const transfers = new PostedTransfers();
const ipxe = data.ipxe ? findIpxeBinaries({ root: data.root, ipxeDir: data.ipxe.ipxeDir }) : undefined;
const service = createTftpService(data.options, {
  root: data.root,
  transfers,
  logger: {
    access: (record) => post({ kind: 'access', record }),
    error: (message) => post({ kind: 'error', message }),
    info: (message) => post({ kind: 'info', message }),
  },
  fallback: ipxe ? (segments) => ipxe.ipxeFile(segments.join('/')) : undefined,
  shed: () => post({ kind: 'shed' }),
});

// Counters: posted as they change, before the packet or record that follows the change, so
// whoever sees that (a client, the log) sees the counters with it; and with the progress.
for (const method of ['finished', 'refuse', 'ignore', 'wait', 'admittedAfter'] as const) {
  const stats = service.stats as unknown as Record<string, (...args: unknown[]) => void>;
  const original = stats[method] as (...args: unknown[]) => void;
  stats[method] = (...args: unknown[]) => {
    original.apply(service.stats, args);
    postStats();
  };
}
let posting = false;
let last = '';
function statsChanged(): void {
  if (posting) return;
  posting = true;
  setImmediate(() => {
    posting = false;
    postStats();
  });
}

function postStats(): void {
  const s = service.stats;
  const snapshot: StatsSnapshot = {
    byOutcome: s.byOutcome.keys().map((k) => [k, s.byOutcome.get(k)]),
    refused: s.refused.keys().map((k) => [k, s.refused.get(k)]),
    ignored: s.ignored.keys().map((k) => [k, s.ignored.get(k)]),
    waited: s.waited.keys().map((k) => [k, s.waited.get(k)]),
    bytesSent: s.bytesSent,
    retransmissions: s.retransmissions,
    admittedAfterWaiting: s.admittedAfterWaiting,
    longestAdmittedWaitMs: s.longestAdmittedWaitMs,
    queue: queueOf(service.status()),
  };
  const text = JSON.stringify(snapshot);
  if (text !== last) post({ kind: 'stats', stats: snapshot });
  last = text;
}
function queueOf(status: Record<string, unknown>): StatsSnapshot['queue'] {
  const q = status.queue as { waiting: number; oldestWaitSeconds: number };
  return { waiting: q.waiting, oldestWaitMs: q.oldestWaitSeconds * 1000 };
}

const timer = setInterval(() => {
  const list = [...transfers.active.values()].map((t): [number, number, number] => [t.id, t.bytesSent, t.lastProgressAt]);
  if (list.length) post({ kind: 'progress', list });
  statsChanged();
}, PROGRESS_MS);

port.on('message', (m: { stop?: number }) => {
  if (m.stop === undefined) return;
  void service.shutdown(m.stop).then(() => {
    clearInterval(timer);
    statsChanged();
    setImmediate(() => setImmediate(() => post({ kind: 'stopped' })));
  });
});

service.start().then(
  () => post({ kind: 'started', addresses: service.addresses(), banner: service.banner() }),
  (err: unknown) => {
    clearInterval(timer);
    post({
      kind: 'failed',
      message: err instanceof Error ? err.message : String(err),
      ...(err instanceof BindError ? { bind: { target: err.target, code: err.code } } : {}),
    });
  },
);
