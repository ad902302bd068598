// The proxyDHCP sockets: receive, hand to the codec and the policy, send what they decide.
//
// Node's dgram cannot tell which interface or destination address a datagram came in on, so:
// UDP 67 is bound to 0.0.0.0 (DHCPDISCOVERs are broadcasts) and offers leave from a second
// port-67 socket bound to the advertised address; 4011 is bound to each address we advertise
// (clients send their request there; the reply must come from that address, port 4011).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindUdp, closeUdp, type BindTarget } from '../net/bind.js';
import { roomForABurst } from '../net/buffers.js';
import { LogBudget, type DhcpRecord } from '../observe/log.js';
import { info, type BannerLine, type Service } from '../service.js';
import { decodePacket } from './packet.js';
import { decide, factsOf, RateLimiter, trafficOf, type Decision, type PolicyConfig, type Port, type RequestFacts } from './policy.js';
import { DhcpStats } from './stats.js';

export interface Endpoint {
  address: string;
  port: number;
}

export interface DhcpOptions {
  /**
   * What to answer with, asked once at start: the builder starts HTTP first, so its bound port
   * is known by then.
   */
  policy: () => PolicyConfig;
  log: (record: DhcpRecord) => void;
  /** Operational problems (a failed send, a socket error). */
  error: (message: string) => void;
  /** Where the DISCOVER socket listens (default 0.0.0.0:67). */
  dhcp?: Endpoint;
  /** Addresses for the 4011 socket (default: the advertised address), and its port (default 4011). */
  proxyAddresses?: string[];
  proxyPort?: number;
  /** Where offers to clients without a relay go (default 255.255.255.255:68). */
  broadcast?: Endpoint;
  /** The port relays listen on (default 67). */
  relayPort?: number;
  limiter?: RateLimiter;
  /** At most this many "ignored" log lines a second; the rest are counted and summarised. */
  ignoredLogPerSecond?: number;
  now?: () => Date;
}

export interface DhcpService extends Service {
  readonly name: 'dhcp';
  readonly stats: DhcpStats;
  /** The bound ports, once started (useful when 0 was asked for). */
  ports(): { dhcp: number; proxy: number };
}

const MESSAGE_NAMES = ['-', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM'];

/** Who else may hold our ports, for the "already in use" line. */
const SUSPECTS: Record<number, string> = {
  67:
    "another DHCP server runs on this host: dnsmasq, dhcpd/isc-dhcp-server, or libvirt's dnsmasq; " +
    'stop it, or run bootserve on another host',
  4011: 'another proxyDHCP or PXE server runs on this host: dnsmasq with pxe-service, or another bootserve',
};

/**
 * Shared: SO_REUSEADDR lets our two port-67 sockets (0.0.0.0 and the advertised address) share the port.
 * A DHCP server holding 0.0.0.0:67 without it (dhcpd, dnsmasq's default) still makes ours fail;
 * one bound to its own interface with it (libvirt's dnsmasq) can stay beside us.
 */
async function bind(endpoint: Endpoint, sharing: 'shared' | 'exclusive'): Promise<Socket> {
  const socket = createSocket({ type: 'udp4', reuseAddr: sharing === 'shared' });
  const target: BindTarget = {
    service: 'proxyDHCP',
    protocol: 'UDP',
    address: endpoint.address,
    port: endpoint.port,
    usualSuspects: SUSPECTS[endpoint.port],
  };
  await bindUdp(socket, { ...target, exclusive: false });
  roomForABurst(socket);
  return socket;
}

export function createDhcpService(options: DhcpOptions): DhcpService {
  const stats = new DhcpStats();
  const limiter = options.limiter ?? new RateLimiter();
  const broadcast = options.broadcast ?? { address: '255.255.255.255', port: 68 };
  const relayPort = options.relayPort ?? 67;
  const now = options.now ?? (() => new Date());
  // Ignored packets may come by the thousand (a busy LAN, a flood): their log lines are bounded.
  const budget = new LogBudget(options.ignoredLogPerSecond ?? 20, (n) =>
    options.error(`DHCP: ${n} more ignored packets in the last second were counted but not logged`),
  );
  const sockets: Socket[] = [];
  let policy: PolicyConfig | undefined;
  let ports = { dhcp: 0, proxy: 0 };
  let closing: Promise<void> | undefined;

  return {
    name: 'dhcp',
    stats,
    ports: () => ports,
    async start() {
      const config = (policy = options.policy());
      try {
        // Takes the broadcast DISCOVERs.
        const listen = await bind(options.dhcp ?? { address: '0.0.0.0', port: 67 }, 'shared');
        sockets.push(listen);
        // Sends the offers (and takes relays' unicasts), bound to the advertised address on the
        // same port: Linux sends a limited broadcast out of the interface of the socket's bound
        // address. From the 0.0.0.0 socket (netns lab), offers left by the default route's
        // interface with that interface's address on a two-interface host, and failed
        // (ENETUNREACH) with no default route.
        const offers = await bind({ address: config.serverAddress, port: listen.address().port }, 'shared');
        sockets.push(offers);
        offers.setBroadcast(true);
        const proxyPort = options.proxyPort ?? 4011;
        for (const address of options.proxyAddresses ?? [config.serverAddress])
          sockets.push(await bind({ address, port: proxyPort }, 'exclusive'));
        const proxySockets = sockets.slice(2);
        listen.on('message', (msg, rinfo) => receive(offers, 'dhcp', msg, rinfo));
        offers.on('message', (msg, rinfo) => receive(offers, 'dhcp', msg, rinfo));
        for (const s of proxySockets) s.on('message', (msg, rinfo) => receive(s, 'proxy', msg, rinfo));
        for (const s of sockets) s.on('error', (err) => options.error(`DHCP socket: ${err.message}`));
        ports = { dhcp: listen.address().port, proxy: proxySockets[0]?.address().port ?? proxyPort };
      } catch (err) {
        await Promise.all(sockets.splice(0).map(closeUdp));
        throw err;
      }
    },
    banner: (): BannerLine[] => [
      info(
        `proxyDHCP: answering PXE and HTTP Boot clients on UDP ${ports.dhcp} and ${policy?.serverAddress}:${ports.proxy}, ` +
        `advertising ${policy?.serverAddress}`,
      ),
    ],
    metrics: () => stats.families(),
    status: () => ({ advertised: policy?.serverAddress ?? null, ports }),
    // A datagram is answered as it comes: nothing is in flight to wait for.
    shutdown: () => (closing ??= Promise.all(sockets.map(closeUdp)).then(() => undefined)),
  };

  function receive(socket: Socket, port: Port, msg: Buffer, rinfo: RemoteInfo): void {
    const base = (facts: RequestFacts | undefined) => ({
      protocol: 'dhcp' as const,
      time: now().toISOString(),
      client: rinfo.address,
      mac: facts?.mac ?? '-',
      port: socket.address().port,
      message: facts?.messageType !== undefined ? (MESSAGE_NAMES[facts.messageType] ?? String(facts.messageType)) : '-',
      xid: facts ? `0x${facts.xid.toString(16).padStart(8, '0')}` : '-',
      arch: facts?.arch ?? null,
    });
    const ignored = (facts: RequestFacts | undefined, decision: Extract<Decision, { kind: 'ignore' }>) => {
      stats.ignoredFor(decision.reason);
      if (!budget.take()) return;
      options.log({ ...base(facts), answer: 'ignored', reason: decision.reason, detail: decision.detail });
    };

    const decoded = decodePacket(msg);
    if (decoded.kind === 'malformed') return ignored(undefined, { kind: 'ignore', reason: 'malformed', detail: decoded.reason });
    const facts = factsOf(decoded.packet);
    if (!policy) return;
    const decision = decide(decoded.packet, port, policy);
    if (decision.kind === 'ignore') return ignored(facts, decision);
    // 0.0.0.0 as a destination is this host itself (its own DHCP client on 68), never the sender.
    if (decision.to.kind === 'source' && rinfo.address === '0.0.0.0')
      return ignored(facts, { kind: 'ignore', reason: 'malformed', detail: 'a 4011 request from 0.0.0.0 has nowhere to be answered' });
    const traffic = trafficOf(port, decision.client);
    const limit = limiter.take(facts.mac, traffic);
    if (limit !== 'ok') {
      return ignored(facts, {
        kind: 'ignore',
        reason: limit,
        detail: `too many replies to ${limit === 'rate-limited-client' ? facts.mac : `all clients (${traffic})`}`,
      });
    }

    const to =
      decision.to.kind === 'broadcast'
        ? broadcast
        : decision.to.kind === 'relay'
          ? { address: decision.to.address, port: relayPort }
          : { address: rinfo.address, port: rinfo.port };
    socket.send(decision.bytes, to.port, to.address, (err) => {
      if (err) options.error(`DHCP: cannot send to ${to.address}:${to.port}: ${err.message}`);
    });
    stats.answered(decision.client);
    options.log({
      ...base(facts),
      answer: port === 'dhcp' ? 'offer' : 'ack',
      kind: decision.client,
      bootFile: decision.bootFile,
      bootPath: decision.bootPath,
    });
  }
}
