// Loaded into bootserve with --import by `storm.ts --probe`: once a second, one line on stderr
// with the event loop's delay (p50/p99/max) and how long a trivial file-system call waits for
// the libuv thread pool (which file reads of HTTP and TFTP share). Measurement only.
import { stat } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const h = monitorEventLoopDelay({ resolution: 5 });
h.enable();
let poolMax = 0;
const probePool = () => {
  const t0 = performance.now();
  stat('/', () => {
    poolMax = Math.max(poolMax, performance.now() - t0);
    setTimeout(probePool, 50).unref();
  });
};
probePool();
setInterval(() => {
  const ms = (ns) => (ns / 1e6).toFixed(1);
  process.stderr.write(
    `probe: loop p50 ${ms(h.percentile(50))} p99 ${ms(h.percentile(99))} max ${ms(h.max)} ms; pool wait max ${poolMax.toFixed(1)} ms\n`,
  );
  h.reset();
  poolMax = 0;
}, 1000).unref();
