// Which address the proxy advertises.
import { isIPv4 } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';

export type AdvertisedAddress = { kind: 'address'; address: string } | { kind: 'refused'; message: string };

/**
 * `--host` when given (an IPv4 address of this host, not loopback), else the only non-internal
 * IPv4 address. Node cannot tell which interface a broadcast came in on, so on a multi-homed host
 * we refuse to guess. `flag` is the option the operator typed (--pxe or --proxy-dhcp), so the
 * message names it.
 */
export function advertisedAddress(
  host: string | undefined,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  flag = '--proxy-dhcp',
): AdvertisedAddress {
  const all = Object.values(interfaces).flatMap((list) => list ?? []).filter((i) => i.family === 'IPv4');
  const addresses = [...new Set(all.filter((i) => !i.internal).map((i) => i.address))];
  const choose = addresses.length > 0 ? ` (this host's: ${addresses.join(', ')})` : '';
  if (host !== undefined) {
    if (!isIPv4(host) || host === '0.0.0.0')
      return { kind: 'refused', message: `${flag} advertises an IPv4 address to clients: --host must be one (got '${host}')${choose}` };
    if (host.startsWith('127.') || all.some((i) => i.address === host && i.internal)) {
      return {
        kind: 'refused',
        message:
          `${flag} --host ${host}: a loopback address, which no other machine can reach; ` +
          `give this host's address on the boot LAN${choose}`,
      };
    }
    // An empty listing (netlink refused) proves nothing: let the bind decide.
    if (all.length > 0 && !all.some((i) => i.address === host)) {
      return { kind: 'refused', message: `${flag} --host ${host}: not an address of this host; give its address on the boot LAN${choose}` };
    }
    return { kind: 'address', address: host };
  }
  if (addresses.length === 1) return { kind: 'address', address: addresses[0] as string };
  if (addresses.length === 0)
    return {
      kind: 'refused',
      message: `${flag}: this host has no non-internal IPv4 address; give the one to advertise with --host ADDR`,
    };
  return {
    kind: 'refused',
    message: `${flag}: this host has several IPv4 addresses (${addresses.join(', ')}); give the one on the boot LAN with --host ADDR`,
  };
}

