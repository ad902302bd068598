// The proxyDHCP thread's entry (see thread.ts): the ordinary service, its records and counters
// posted to the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { BindError } from '../net/bind.js';
import type { Firmware } from '../netboot/ipxe.js';
import { CLIENT_KINDS, IGNORE_REASONS } from './policy.js';
import { createDhcpService } from './server.js';
import type { ThreadData, ThreadMessage } from './thread.js';

const port = parentPort;
if (!port) throw new Error('thread-worker.ts runs as a worker thread only');
const data = workerData as ThreadData;
const post = (m: ThreadMessage) => port.postMessage(m);
const binaries = new Map<Firmware, string>(data.binaries);

const service = createDhcpService({
  policy: () => ({
    serverAddress: data.serverAddress,
    httpPort: data.httpPort,
    binaryFor: (f) => (binaries.has(f) ? { name: binaries.get(f) as string } : undefined),
  }),
  log: (record) => {
    post({ kind: 'log', record });
    statsChanged();
  },
  error: (message) => post({ kind: 'error', message }),
  dhcp: data.dhcp,
  proxyAddresses: data.proxyAddresses,
  proxyPort: data.proxyPort,
  broadcast: data.broadcast,
  relayPort: data.relayPort,
  ignoredLogPerSecond: data.ignoredLogPerSecond,
});

// Counters go with the records; ignored packets beyond the log budget have no record, so a
// change is also posted at the end of each turn that saw one (at most once a turn).
let posting = false;
let last = '';
function statsChanged(): void {
  if (posting) return;
  posting = true;
  setImmediate(() => {
    posting = false;
    const m: ThreadMessage = {
      kind: 'stats',
      answers: CLIENT_KINDS.map((k) => [k, service.stats.answers.get(k)]),
      ignored: IGNORE_REASONS.map((k) => [k, service.stats.ignored.get(k)]),
    };
    const text = JSON.stringify(m);
    if (text !== last) post(m);
    last = text;
  });
}
const timer = setInterval(statsChanged, 250);

port.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  void service.shutdown(0).then(() => post({ kind: 'stopped' }));
});

service.start().then(
  () => post({ kind: 'started', ports: service.ports() }),
  (err: unknown) => {
    clearInterval(timer);
    post({
      kind: 'failed',
      message: err instanceof Error ? err.message : String(err),
      ...(err instanceof BindError ? { bind: { target: err.target, code: err.code } } : {}),
    });
  },
);
