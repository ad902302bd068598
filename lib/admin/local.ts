// The operator pages on localhost when --host names one address that is not loopback (a PXE
// server on a multi-homed box): otherwise `curl http://127.0.0.1:8080/-/machines` on the server
// itself cannot connect. The builder adds this service then: the admin pages alone (no files) on
// 127.0.0.1 at HTTP's bound port. A convenience, never a reason not to start: when that port is
// taken on loopback, the banner says so and names the URL that works.
import { isIP } from 'node:net';
import type { HttpService } from '../http/server.js';
import type { MetricFamily } from '../observe/prometheus.js';
import { info, warn, type BannerLine, type Service } from '../service.js';

/** Whether HTTP on `host` leaves 127.0.0.1 out: one address, neither a wildcard nor loopback. */
export function needsLocalAdmin(host: string | undefined): boolean {
  if (host === undefined || host === '' || host === '0.0.0.0' || host === '::' || host === 'localhost') return false;
  if (isIP(host) === 4) return !host.startsWith('127.');
  if (isIP(host) === 6) return host !== '::1' && !/^::ffff:127\./i.test(host);
  return true;
}

export interface LocalAdminOptions {
  /** HTTP's bound port, known once HTTP has started (it may have been given as 0). */
  port: () => number;
  /** The admin listener on 127.0.0.1 at `port` (http/server.ts, named 'admin'). */
  create: (port: number) => HttpService;
  /** Where the pages are when 127.0.0.1 cannot have them: "http://198.18.0.2:8080/-/". */
  elsewhere: () => string;
}

type LocalState =
  { kind: 'idle' } | { kind: 'listening'; service: HttpService; port: number } | { kind: 'refused'; port: number; reason: string };

export function createLocalAdmin(options: LocalAdminOptions): Service {
  let state: LocalState = { kind: 'idle' };
  return {
    name: 'admin',
    async start() {
      const port = options.port();
      const service = options.create(port);
      try {
        await service.start();
        state = { kind: 'listening', service, port };
      } catch (err) {
        await service.shutdown(0);
        state = { kind: 'refused', port, reason: (err as Error).message };
      }
    },
    banner(): BannerLine[] {
      switch (state.kind) {
        case 'listening':
          return [info(`admin pages also on http://127.0.0.1:${state.port}/-/ (--host leaves localhost out)`)];
        case 'refused':
          return [warn(`warning: the admin pages are not on localhost (${state.reason}); they are at ${options.elsewhere()}`)];
        case 'idle':
          return [];
      }
    },
    metrics: (): MetricFamily[] => [],
    status: () => (state.kind === 'listening' ? { address: `127.0.0.1:${state.port}`, ...state.service.status() } : { address: null }),
    shutdown: (graceMs) => (state.kind === 'listening' ? state.service.shutdown(graceMs) : Promise.resolve()),
  };
}
