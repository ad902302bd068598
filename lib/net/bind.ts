// Binding ports, for every service: TCP listen and UDP bind as promises, and one table that turns
// a failed bind into a one-line message naming the port, the cause and the cure.
import type { Socket as UdpSocket } from 'node:dgram';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import { hostLiteral } from './addresses.js';

/** Where a service wants to listen, and what to tell the operator should it fail. */
export interface BindTarget {
  /** Who asks: "HTTP", "TFTP", "proxyDHCP", "admin". */
  service: string;
  protocol: 'TCP' | 'UDP';
  address: string | undefined;
  port: number;
  /** The flag that sets this port (named in the message), e.g. "--port". */
  portFlag?: string;
  /** Who else may hold the port, for "already in use" (e.g. "another TFTP server: tftpd-hpa?"). */
  usualSuspects?: string;
}

/** A port that could not be had. `message` is the one line the process prints before exit 1. */
export class BindError extends Error {
  constructor(
    readonly target: BindTarget,
    readonly code: string | undefined,
    cause: string,
  ) {
    super(bindMessage(target, code, cause));
  }
}

/** Ports below this need privilege (CAP_NET_BIND_SERVICE) on Linux. */
const PRIVILEGED_BELOW = 1024;

export function bindMessage(t: BindTarget, code: string | undefined, cause: string): string {
  // UDP services bind a socket per address, so the address is part of which port; HTTP has one
  // listening socket, named by its port (the address follows in brackets when it has one).
  const specific = t.address !== undefined && t.address !== '0.0.0.0' && t.address !== '::';
  const where = t.protocol === 'UDP' ? `UDP port ${t.port}${specific ? ` on ${hostLiteral(t.address as string)}` : ''}` : `port ${t.port}`;
  const at = t.protocol === 'TCP' && specific ? ` (${hostLiteral(t.address as string)}:${t.port})` : '';
  const flag = t.portFlag ? `; choose another with ${t.portFlag}` : '';
  switch (code) {
    case 'EADDRINUSE':
      return `${t.service}: ${where} is already in use${at}${t.usualSuspects ? ` (${t.usualSuspects})` : ''}${flag}`;
    case 'EACCES':
    case 'EPERM':
      return t.port > 0 && t.port < PRIVILEGED_BELOW
        ? `${t.service}: permission denied for ${where}${at}: ports below ${PRIVILEGED_BELOW} need root ` +
            `(bootserve binds them, then runs as nobody or --user NAME) or CAP_NET_BIND_SERVICE for bootserve alone ` +
            `(systemd: the drop-in contrib/systemd/tftp.conf)`
        : `${t.service}: permission denied for ${where}${at}`;
    case 'EADDRNOTAVAIL':
      return (
        `${t.service}: cannot listen on ${where}${at}: ${t.address} is not an address of this host ` +
        `(${t.portFlag === '--admin-listen' ? '--admin-listen' : '--host'})`
      );
    default:
      return `${t.service}: cannot listen on ${where}${at}: ${cause}`;
  }
}

/** Listen on a TCP server: on `fd` (socket activation), or on address and port. */
export function listenTcp(server: TcpServer, target: BindTarget & { fd?: number | undefined; ipv6Only?: boolean }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(new BindError(target, err.code, err.message));
    server.once('error', failed);
    const options =
      target.fd !== undefined ? { fd: target.fd } : { port: target.port, host: target.address, ipv6Only: target.ipv6Only ?? false };
    server.listen(options, () => {
      server.off('error', failed);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Listen on every interface: dual-stack "::" where the host has IPv6, else "0.0.0.0"; on the
 * given address otherwise.
 */
export async function listenAnywhere(server: TcpServer, target: BindTarget & { fd?: number | undefined }): Promise<AddressInfo> {
  if (target.fd !== undefined || target.address !== undefined) return listenTcp(server, target);
  try {
    return await listenTcp(server, { ...target, address: '::' });
  } catch (err) {
    const code = err instanceof BindError ? err.code : undefined;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
    return listenTcp(server, { ...target, address: '0.0.0.0' });
  }
}

/** Bind a UDP socket; on failure the socket is closed and a BindError says why. */
export function bindUdp(socket: UdpSocket, target: BindTarget & { exclusive?: boolean }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      closeUdp(socket);
      reject(new BindError(target, err.code, err.message));
    };
    socket.once('error', failed);
    socket.bind({ address: target.address, port: target.port, exclusive: target.exclusive ?? true }, () => {
      socket.off('error', failed);
      resolve(socket.address());
    });
  });
}

/** Close a UDP socket, resolving once closed; a socket already closed is fine. */
export function closeUdp(socket: UdpSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
