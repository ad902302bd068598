// Which address the proxy advertises.
import { isIPv4 } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';

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

