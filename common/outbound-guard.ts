import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

// Every address a team gives (a webhook, a bucket endpoint, a receiver) is reached from inside the
// control plane's network: without this guard a team could make strackt call its metadata service,
// its database or anything else only the control plane can reach, and read what answered in a
// delivery log or a connectivity check.

/** A refusal says only that: never what is, or is not, at the address. */
export class OutboundRefused extends Error {
  override name = 'OutboundRefused';
}

// One list per family: BlockList checks an IPv4 address against IPv6 rules as its mapped form, and
// the mapped range (::ffff:0:0/96) is refused here, which would refuse every IPv4 address.
const refusedV4 = new BlockList();
const refusedV6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, the cloud metadata services among them
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const)
  refusedV4.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96], // IPv4-mapped: an IPv4 address by another name
  ['64:ff9b::', 96], // NAT64, the same
  ['100::', 64],
  ['2001:db8::', 32],
  ['2002::', 16], // 6to4, which embeds an IPv4 address
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const)
  refusedV6.addSubnet(net, prefix, 'ipv6');

/** An address (or network) the operator allows although it is private, on one port or all. */
export interface OutboundAllowance {
  network: BlockList;
  port?: number;
}

/**
 * STRACKT_OUTBOUND_ALLOW: a comma-separated list of `address`, `address/prefix`, `address:port` or
 * `[v6address]:port`. The one-machine stack allows its own stand-ins (the local bucket); a private
 * installation allows its private network. Throws on an entry it cannot read.
 */
export function parseOutboundAllow(text: string): OutboundAllowance[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9a-fA-F:.]+?))(?:\/(\d{1,3}))?(?::(\d{1,5}))?$/.exec(entry);
      const address = m?.[1] ?? m?.[2];
      const family = address ? isIP(address) : 0;
      // A bare IPv6 address's last group reads as a port: those take brackets to have one.
      if (!m || !family || (m[2] && family === 6 && m[4]))
        throw new Error(`"${entry}" is not an address, address/prefix or address:port`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      const prefix = m[3] === undefined ? (family === 4 ? 32 : 128) : Number(m[3]);
      const port = m[4] === undefined ? undefined : Number(m[4]);
      if (prefix > (family === 4 ? 32 : 128) || (port !== undefined && (port < 1 || port > 65535)))
        throw new Error(`"${entry}" has a prefix or port out of range`);
      const network = new BlockList();
      network.addSubnet(address!, prefix, type);
      return { network, ...(port !== undefined && { port }) };
    });
}

let allowances: OutboundAllowance[] = [];

/** Set once at start from the configuration (api/main.ts, the control-plane worker, tests' stack). */
export function allowOutbound(allowed: OutboundAllowance[]): void {
  allowances = allowed;
}

function allowed(address: string, port: number): boolean {
  const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
  if (!(type === 'ipv4' ? refusedV4 : refusedV6).check(address, type)) return true;
  return allowances.some((a) => a.network.check(address, type) && (a.port === undefined || a.port === port));
}

const refusal = (host: string) =>
  new OutboundRefused(
    `${host} is not an address strackt connects to (private, loopback, link-local or reserved networks are refused)`,
  );

/** The port a URL reaches. */
export const portOf = (url: URL) => Number(url.port || (url.protocol === 'https:' ? 443 : 80));

/**
 * Checks a URL whose host is an address, which no lookup sees; a name is checked by `lookupFor` as
 * it is resolved. Throws OutboundRefused.
 */
export function checkOutboundUrl(url: URL): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !allowed(host, portOf(url))) throw refusal(url.host);
}

/**
 * A lookup for connections to `port` that answers only addresses the guard allows: the connection is
 * made to the very address checked, so a name cannot resolve to an allowed address for the check and
 * to another for the connection. One refused address refuses the name.
 */
export function lookupFor(port: number): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      if (!addresses.length || addresses.some((a) => !allowed(a.address, port)))
        return callback(Object.assign(refusal(hostname), { code: 'EOUTBOUNDREFUSED' }), '', 0);
      if (options.all) return (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** For validating a URL a team gives: false when its host is an address the guard refuses. */
export function outboundAllowed(text: string): boolean {
  try {
    checkOutboundUrl(new URL(text));
    return true;
  } catch {
    return false;
  }
}

export const outboundRefusedMessage =
  'is a private, loopback, link-local or reserved address, which strackt does not connect to';
