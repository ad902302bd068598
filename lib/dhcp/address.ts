// Which address the proxy advertises, and what to tell the operator when its ports cannot be had.
import { isIPv4 } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import type { DhcpBindError } from './server.js';

export type AdvertisedAddress = { kind: 'address'; address: string } | { kind: 'refused'; message: string };

/**
 * `--host` when given (an IPv4 literal), else the only non-internal IPv4 address. Node cannot
 * tell which interface a broadcast came in on, so on a multi-homed host we refuse to guess.
 */
export function advertisedAddress(host: string | undefined, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): AdvertisedAddress {
  if (host !== undefined) {
    if (isIPv4(host) && host !== '0.0.0.0') return { kind: 'address', address: host };
    return { kind: 'refused', message: `--proxy-dhcp advertises an IPv4 address to clients: --host must be one (got '${host}')` };
  }
  const addresses = [
    ...new Set(
      Object.values(interfaces)
        .flatMap((list) => list ?? [])
        .filter((i) => i.family === 'IPv4' && !i.internal)
        .map((i) => i.address),
    ),
  ];
  if (addresses.length === 1) return { kind: 'address', address: addresses[0] as string };
  if (addresses.length === 0) return { kind: 'refused', message: '--proxy-dhcp: this host has no non-internal IPv4 address; give the one to advertise with --host ADDR' };
  return { kind: 'refused', message: `--proxy-dhcp: this host has several IPv4 addresses (${addresses.join(', ')}); give the one on the boot LAN with --host ADDR` };
}

/** One line for a socket that could not be bound, naming the port and the likely cause. */
export function bindErrorMessage(err: DhcpBindError): string {
  const where = err.address === '0.0.0.0' ? `UDP port ${err.port}` : `UDP port ${err.port} on ${err.address}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return err.port === 67
        ? `${where} is already in use: another DHCP server runs on this host (dnsmasq, dhcpd/isc-dhcp-server, or libvirt's dnsmasq); stop it, or run bootserve on another host`
        : `${where} is already in use: another proxyDHCP or PXE server runs on this host (dnsmasq with pxe-service, or another bootserve)`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied for ${where}: run as root, or grant the capability: setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `cannot bind ${where}: ${err.address} is not an address of this host`;
    default:
      return `cannot bind ${where}: ${err.message}`;
  }
}
