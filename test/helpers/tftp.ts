// An in-process TFTP service on 127.0.0.1 port 0, and a raw node:dgram client to drive it
// packet by packet.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readdirSync, readlinkSync } from 'node:fs';
import { metricsText } from '../../lib/admin/pages.js';
import { buildApp, type App } from '../../lib/app.js';
import { DEFAULTS, type Config } from '../../lib/cli.js';
import type { DhcpLogger, Logger, TftpRecord } from '../../lib/observe/log.js';
import type { Transfers } from '../../lib/observe/transfers.js';
import { decode, encodeAck, encodeRequest, type Malformed, type Packet } from '../../lib/tftp/packet.js';
import type { TftpService } from '../../lib/tftp/server.js';
import type { TftpStats } from '../../lib/tftp/stats.js';
import { serverRoot } from './server.js';

export interface TestTftp {
  port: number;
  root: string;
  logs: TftpRecord[];
  errors: string[];
  app: App;
  transfers: Transfers;
  stats: TftpStats;
  server: TftpService;
  /** /-/metrics as the admin page renders it. */
  metricsText(): string;
  /** Resolves with the access record of the next transfer of `file` to end (call it first). */
  nextLog(file: string): Promise<TftpRecord>;
  close(): Promise<void>;
}

/** bootserve with TFTP on 127.0.0.1 (HTTP too, both on port 0), built as the process builds it. */
export async function startTftp(
  options: Partial<Config> & { files?: Record<string, string | Buffer>; root?: string } = {},
): Promise<TestTftp> {
  const { files: _files, ...overrides } = options;
  const { root, remove } = serverRoot(options);
  const config: Config = { ...DEFAULTS, quiet: true, host: '127.0.0.1', port: 0, tftp: true, tftpPort: 0, ...overrides, root };
  const logs: TftpRecord[] = [];
  const errors: string[] = [];
  const waiters: { file: string; resolve: (r: TftpRecord) => void }[] = [];
  const logger: Logger & DhcpLogger = {
    access: (r) => {
      if (r.protocol !== 'tftp') return;
      logs.push(r);
      const i = waiters.findIndex((w) => w.file === r.path);
      if (i >= 0) waiters.splice(i, 1)[0]?.resolve(r);
    },
    dhcp: () => {},
    error: (m) => errors.push(m),
    info: () => {},
  };
  const app = buildApp({ config, root, version: '9.9.9', logger });
  await app.start();
  const server = app.tftp as TftpService;
  return {
    port: (server.addresses()[0] as { port: number }).port,
    root,
    logs,
    errors,
    app,
    transfers: app.transfers,
    stats: server.stats,
    server,
    metricsText: () =>
      metricsText({ version: '9.9.9', root, settings: config, transfers: app.transfers, ready: () => true, services: () => app.services }),
    nextLog: (file) => new Promise((resolve) => waiters.push({ file, resolve })),
    close: async () => {
      await app.shutdown(0);
      remove();
    },
  };
}

export interface Received {
  packet: Packet | Malformed;
  from: RemoteInfo;
}

/** A client socket: send anything, receive decoded packets in order, with a bounded wait. */
export class RawClient {
  readonly socket: Socket;
  private readonly queue: Received[] = [];
  private waiter: (() => void) | undefined;

  constructor() {
    this.socket = createSocket('udp4');
    this.socket.on('message', (msg, from) => {
      this.queue.push({ packet: decode(msg), from });
      this.waiter?.();
    });
  }

  async open(): Promise<this> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
    return this;
  }

  /** Resolves once the datagram has left (close() right after send() would drop it). */
  send(packet: Buffer, port: number): Promise<void> {
    return new Promise((resolve) => this.socket.send(packet, port, '127.0.0.1', () => resolve()));
  }

  request(port: number, file: string, options: Record<string, string | number> = {}, mode = 'octet'): Promise<void> {
    return this.send(encodeRequest('rrq', file, mode, options), port);
  }

  /** The next packet, or undefined after `ms`. */
  async next(ms = 2000): Promise<Received | undefined> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift();
  }

  /** Everything that arrives within `ms`. */
  async drain(ms: number): Promise<Received[]> {
    const out: Received[] = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await this.next(Math.max(0, deadline - Date.now()));
      if (!r) return out;
      out.push(r);
    }
  }

  close(): void {
    this.socket.close();
  }
}

export interface Download {
  data: Buffer;
  oack: Map<string, string> | undefined;
  /** DATA packets received (including resends). */
  packets: number;
  /** The server's transfer port (its TID). */
  tid: number;
}

/**
 * Fetch `file` as a well-behaved client: ACK 0 after an OACK, an ACK per window (the window the
 * OACK granted), stop after the short block. Throws on an ERROR or a 5 s silence.
 */
export async function download(
  port: number,
  file: string,
  options: Record<string, string | number> = {},
  mode = 'octet',
): Promise<Download> {
  const client = await new RawClient().open();
  try {
    client.request(port, file, options, mode);
    let oack: Map<string, string> | undefined;
    let blksize = 512;
    let windowsize = 1;
    const chunks: Buffer[] = [];
    let expected = 1; // absolute block number expected next
    let packets = 0;
    let tid = 0;
    let inWindow = 0;
    for (;;) {
      const r = await client.next(5000);
      if (!r) throw new Error(`no answer for ${file} after block ${expected - 1}`);
      const p = r.packet;
      tid = r.from.port;
      if (p.op === 'error') throw new Error(`ERROR ${p.code}: ${p.message}`);
      if (p.op === 'oack') {
        oack = p.options;
        blksize = Number(p.options.get('blksize') ?? 512);
        windowsize = Number(p.options.get('windowsize') ?? 1);
        client.send(encodeAck(0), tid);
        continue;
      }
      if (p.op !== 'data') throw new Error(`unexpected ${p.op}`);
      packets++;
      if (p.block !== (expected & 0xffff)) continue; // a resend or out of order: wait for the window again
      chunks.push(Buffer.from(p.data));
      expected++;
      inWindow++;
      const last = p.data.length < blksize;
      if (last || inWindow === windowsize) {
        await client.send(encodeAck(p.block), tid);
        inWindow = 0;
      }
      if (last) return { data: Buffer.concat(chunks), oack, packets, tid };
    }
  } finally {
    client.close();
  }
}

/** Open descriptors of this process. */
export async function openFds(): Promise<number> {
  return readdirSync('/proc/self/fd').length;
}

/** Descriptors of this process open on files under `dir`. */
export function descriptorsUnder(dir: string): string[] {
  const targets = readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return ''; // closed meanwhile (the listing's own descriptor)
    }
  });
  return targets.filter((target) => target.startsWith(`${dir}/`));
}
