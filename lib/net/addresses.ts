// Addresses, for every service: this host's interfaces (guarded: a systemd unit without netlink
// cannot list them), how an address is shown to people and in URLs.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

/** An interface address, with the interface's name (eth0) for link-local scopes. */
export type LocalAddress = NetworkInterfaceInfo & { name: string };

/** This host's interfaces, or undefined when they cannot be listed (no netlink). */
export function listInterfaces(): NodeJS.Dict<NetworkInterfaceInfo[]> | undefined {
  try {
    return networkInterfaces();
  } catch {
    return undefined;
  }
}

/** Every address of every interface, or undefined when they cannot be listed. */
export function localAddresses(): LocalAddress[] | undefined {
  const table = listInterfaces();
  return table && Object.entries(table).flatMap(([name, infos]) => (infos ?? []).map((i) => ({ ...i, name })));
}

/** IPv4 clients of a dual-stack socket as IPv4 (192.0.2.7, not ::ffff:192.0.2.7), so one
 * machine's DHCP, TFTP and HTTP records line up. */
export const displayAddress = (address: string) => (address.startsWith('::ffff:') ? address.slice(7) : address);

/** An address as the host part of a URL or ADDR:PORT: IPv6 in brackets. */
export const hostLiteral = (address: string) => (address.includes(':') ? `[${address}]` : address);

/** One URL per address a client could use: non-internal ones, or loopback if there are none. */
export function urlsFor(
  address: { address: string; family: string; port: number },
  list: () => LocalAddress[] | undefined = localAddresses,
): string[] {
  const addresses = list();
  const url = (a: string) => `http://${hostLiteral(a)}:${address.port}/`;
  if (address.address !== '::' && address.address !== '0.0.0.0') return [url(address.address)];
  if (!addresses) return [`http://<this-host>:${address.port}/`];
  const usable = addresses.filter((i) => (address.family === 'IPv6' || i.family === 'IPv4') && !i.address.startsWith('fe80'));
  const external = usable.filter((i) => !i.internal);
  return (external.length ? external : usable).map((i) => url(i.address));
}
