import { networkInterfaces } from 'node:os';

/**
 * The base URL other nodes can reach this one at, when `--advertise` does not say: the one it listens on, unless
 * that is a wildcard (0.0.0.0, ::), which names no machine; then the first non-loopback address of this machine
 * (IPv4 first, as a LAN peer most likely routes), falling back to loopback on a machine with no network.
 */
export function reachableUrl(listening: string, host: string, port: number, tls: boolean): string {
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return listening;
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined && !entry.internal);
  const chosen =
    addresses.find((entry) => entry?.family === 'IPv4') ??
    addresses.find((entry) => entry?.family === 'IPv6' && !entry.address.startsWith('fe80:'));
  const name = chosen ? (chosen.family === 'IPv6' ? `[${chosen.address}]` : chosen.address) : '127.0.0.1';
  return `${tls ? 'https' : 'http'}://${name}:${port}`;
}
