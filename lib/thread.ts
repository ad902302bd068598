// A module of ours on a worker thread (proxyDHCP's and TFTP's thread-worker): the compiled .js
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
