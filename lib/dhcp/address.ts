// Which address the proxy advertises, and what to tell the operator when its ports cannot be had.
import { isIPv4 } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import type { DhcpBindError } from './server.js';

/**
 * How to get a port below 1024, least privilege first. Never setcap on the system's node (that
 * grants the right to every Node program), never a port above 1023 (firmware uses 67, 69, 4011).
 */
export const PRIVILEGED_PORT_ADVICE =
  'start bootserve as root: it binds its ports, then runs as nobody (--user NAME picks the user); ' +
  'or under systemd, the drop-in contrib/systemd/tftp.conf (AmbientCapabilities=CAP_NET_BIND_SERVICE)';

export type AdvertisedAddress = { kind: 'address'; address: string } | { kind: 'refused'; message: string };

/**
 * `--host` when given (an IPv4 address of this host, not loopback), else the only non-internal
 * IPv4 address. Node cannot tell which interface a broadcast came in on, so on a multi-homed host
 * we refuse to guess. `flag` is the option the operator typed (--pxe or --proxy-dhcp), so the
 * message names it.
 */
export function advertisedAddress(host: string | undefined, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>, flag = '--proxy-dhcp'): AdvertisedAddress {
  const all = Object.values(interfaces).flatMap((list) => list ?? []).filter((i) => i.family === 'IPv4');
  const addresses = [...new Set(all.filter((i) => !i.internal).map((i) => i.address))];
  const choose = addresses.length > 0 ? ` (this host's: ${addresses.join(', ')})` : '';
  if (host !== undefined) {
    if (!isIPv4(host) || host === '0.0.0.0') return { kind: 'refused', message: `${flag} advertises an IPv4 address to clients: --host must be one (got '${host}')${choose}` };
    if (host.startsWith('127.') || all.some((i) => i.address === host && i.internal)) {
      return { kind: 'refused', message: `${flag} --host ${host}: a loopback address, which no other machine can reach; give this host's address on the boot LAN${choose}` };
    }
    // An empty listing (netlink refused) proves nothing: let the bind decide.
    if (all.length > 0 && !all.some((i) => i.address === host)) {
      return { kind: 'refused', message: `${flag} --host ${host}: not an address of this host; give its address on the boot LAN${choose}` };
    }
    return { kind: 'address', address: host };
  }
  if (addresses.length === 1) return { kind: 'address', address: addresses[0] as string };
  if (addresses.length === 0) return { kind: 'refused', message: `${flag}: this host has no non-internal IPv4 address; give the one to advertise with --host ADDR` };
  return { kind: 'refused', message: `${flag}: this host has several IPv4 addresses (${addresses.join(', ')}); give the one on the boot LAN with --host ADDR` };
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
      return `permission denied for ${where}: ${PRIVILEGED_PORT_ADVICE}`;
    case 'EADDRNOTAVAIL':
      return `cannot bind ${where}: ${err.address} is not an address of this host`;
    default:
      return `cannot bind ${where}: ${err.message}`;
  }
}
