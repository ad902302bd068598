// A module of ours on a worker thread (proxyDHCP's and TFTP's thread-worker), started and stopped: the compiled .js
// beside the caller, or, when the caller runs from its .ts source under tsx (the tests), the
// .ts source with tsx registered in the thread too.
import { Worker } from 'node:worker_threads';

/** Start `name` (without extension), which sits beside the module whose URL is `callerUrl`. */
export function startWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  const source = callerUrl.endsWith('.ts');
  const entry = new URL(`./${name}${source ? '.ts' : '.js'}`, callerUrl);
  if (!source) return new Worker(entry, { workerData });
  const load = `import('tsx/esm/api').then((t) => t.register()).then(() => import(${JSON.stringify(entry.href)}))`;
  return new Worker(load, { eval: true, workerData });
}

/**
 * Ask a service's thread to stop (`request` is its stop message), wait until it says
 * `{ kind: 'stopped' }` or exits, at most `boundMs`, then end it: a bounded shutdown.
 */
export async function stopWorker(worker: Worker, request: unknown, boundMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, boundMs);
    worker.on('message', (m: { kind?: string }) => {
      if (m.kind === 'stopped') done();
    });
    worker.on('exit', done);
    worker.postMessage(request);
  });
  await worker.terminate();
}
