// The one SSRF guard (DESIGN "hostile input") of every outgoing connection to a URL someone
// else chose: image URLs from a crawler of a foreign site (IMAGE_DOWNLOAD_ALLOW_HOSTS) and webhook
// URLs an API client registered (WEBHOOK_ALLOW_HOSTS). Such a connection may only go to a public
// unicast address. Everything else — private, loopback, link-local, CGNAT, multicast, reserved,
// documentation, benchmarking, IPv6 ULA, and IPv4 hidden inside IPv6 (mapped, NAT64) — is refused
// unless its `host:port` is on the caller's allow list.
//
// The check runs where the connection is made: `guardedLookup` is the `lookup` of every request
// (net calls it to resolve a host name right before connecting), so the address checked is the
// address connected to and DNS rebinding has no window. IP-literal hosts never reach a lookup,
// so `assertHostAllowed` checks them before the request is made.
import dns from 'node:dns';
import net from 'node:net';
import { AppError } from './app-error';

/**
 * A connection the guard refused: the host is, or resolves to, an address outside public unicast.
 * Permanent for the URL as it stands; the caller adds which allow list would exempt it.
 */
export class BlockedAddressError extends AppError {
  readonly code = 'blocked_address';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(host === address ? `${address} is a ${reason} address` : `${host} resolves to ${address}, a ${reason} address`, { permanent: true });
  }
}

type Range = readonly [prefix: bigint, bits: number, reason: string];

const v4 = (text: string): bigint => parseIPv4(text)!;
const v6 = (text: string): bigint => parseIPv6(text)!;

/** IPv4 special-purpose ranges (IANA registry, RFC 6890 and successors). */
const BLOCKED_V4: readonly Range[] = [
  [v4('0.0.0.0'), 8, '"this network" (0.0.0.0/8)'],
  [v4('10.0.0.0'), 8, 'private (10.0.0.0/8)'],
  [v4('100.64.0.0'), 10, 'carrier-grade NAT (100.64.0.0/10)'],
  [v4('127.0.0.0'), 8, 'loopback (127.0.0.0/8)'],
  [v4('169.254.0.0'), 16, 'link-local (169.254.0.0/16)'],
  [v4('172.16.0.0'), 12, 'private (172.16.0.0/12)'],
  [v4('192.0.0.0'), 24, 'IETF protocol assignment (192.0.0.0/24)'],
  [v4('192.0.2.0'), 24, 'documentation (192.0.2.0/24)'],
  [v4('192.88.99.0'), 24, '6to4 relay anycast (192.88.99.0/24)'],
  [v4('192.168.0.0'), 16, 'private (192.168.0.0/16)'],
  [v4('198.18.0.0'), 15, 'benchmarking (198.18.0.0/15)'],
  [v4('198.51.100.0'), 24, 'documentation (198.51.100.0/24)'],
  [v4('203.0.113.0'), 24, 'documentation (203.0.113.0/24)'],
  [v4('224.0.0.0'), 4, 'multicast (224.0.0.0/4)'],
  [v4('240.0.0.0'), 4, 'reserved (240.0.0.0/4, with broadcast 255.255.255.255)'],
];

/** IPv6 ranges inside global unicast 2000::/3 that are still not the public internet. */
const BLOCKED_V6_IN_GLOBAL: readonly Range[] = [
  [v6('2001::'), 23, 'IETF protocol assignment (2001::/23: Teredo, benchmarking, ORCHID)'],
  [v6('2001:db8::'), 32, 'documentation (2001:db8::/32)'],
  [v6('2002::'), 16, '6to4 (2002::/16)'],
  [v6('3fff::'), 20, 'documentation (3fff::/20)'],
];

const NAMED_V6: readonly Range[] = [
  [0n, 128, 'unspecified (::)'],
  [1n, 128, 'loopback (::1)'],
  [v6('64:ff9b:1::'), 48, 'local-use NAT64 (64:ff9b:1::/48)'],
  [v6('100::'), 64, 'discard-only (100::/64)'],
  [v6('fc00::'), 7, 'unique local (fc00::/7)'],
  [v6('fe80::'), 10, 'link-local (fe80::/10)'],
  [v6('fec0::'), 10, 'site-local (fec0::/10)'],
  [v6('ff00::'), 8, 'multicast (ff00::/8)'],
];

const MAPPED_V4 = v6('::ffff:0:0');
const NAT64 = v6('64:ff9b::');
const GLOBAL_UNICAST = v6('2000::');

const inRange = (value: bigint, width: number, [prefix, bits]: Range) => value >> BigInt(width - bits) === prefix >> BigInt(width - bits);

/** Strict dotted-quad IPv4 (what resolvers and WHATWG-normalised hosts give) as a 32-bit number. */
export function parseIPv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

/** An IPv6 address (compressed, with an embedded IPv4 tail, or a zone id) as a 128-bit number. */
export function parseIPv6(text: string): bigint | null {
  let s = text.replace(/^\[|\]$/g, '');
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (net.isIPv6(s) === false) return null;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const ipv4 = parseIPv4(s.slice(lastColon + 1));
    if (ipv4 === null) return null;
    tail = [Number(ipv4 >> 16n), Number(ipv4 & 0xffffn)];
    s = `${s.slice(0, lastColon + 1)}0:0`; // placeholder groups, replaced below
  }
  const [head, rest] = s.split('::');
  const parse = (chunk: string | undefined) => (chunk ? chunk.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(rest);
  const groups = s.includes('::') ? [...left, ...new Array(8 - left.length - right.length).fill(0), ...right] : left;
  if (groups.length !== 8) return null;
  if (tail.length) groups.splice(6, 2, ...tail);
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Why an address is not public unicast, or null when it is. Anything unparsable is blocked. */
export function blockedAddressReason(address: string): string | null {
  const ipv4 = parseIPv4(address);
  if (ipv4 !== null) return BLOCKED_V4.find((r) => inRange(ipv4, 32, r))?.[2] ?? null;
  const ipv6 = parseIPv6(address);
  if (ipv6 === null) return 'unrecognised';
  // IPv4 carried in IPv6 reaches that IPv4 host: judge it as its IPv4.
  if (inRange(ipv6, 128, [MAPPED_V4, 96, '']) || inRange(ipv6, 128, [NAT64, 96, ''])) {
    const embedded = ipv6 & 0xffffffffn;
    const reason = BLOCKED_V4.find((r) => inRange(embedded, 32, r))?.[2];
    return reason ? `${reason} inside IPv6` : null;
  }
  const named = NAMED_V6.find((r) => inRange(ipv6, 128, r));
  if (named) return named[2];
  if (!inRange(ipv6, 128, [GLOBAL_UNICAST, 3, ''])) return 'reserved IPv6 (outside global unicast 2000::/3)';
  return BLOCKED_V6_IN_GLOBAL.find((r) => inRange(ipv6, 128, r))?.[2] ?? null;
}

export const isPublicAddress = (address: string) => blockedAddressReason(address) === null;

/**
 * An allow list (IMAGE_DOWNLOAD_ALLOW_HOSTS, WEBHOOK_ALLOW_HOSTS) as a set of WHATWG-normalised `host:port` strings, so that
 * `[0:0::1]:80` and `[::1]:80` (or `LOCALHOST:80`) are the same entry.
 */
export function normaliseAllowHosts(entries: readonly string[]): ReadonlySet<string> {
  const out = new Set<string>();
  for (const entry of entries) {
    try {
      const url = new URL(`http://${entry}`);
      if (url.port) out.add(`${url.hostname}:${url.port}`);
      else out.add(`${url.hostname}:80`); // "host:80" normalises its port away
    } catch {
      // Config validated the shape; an entry URL cannot parse allows nothing.
    }
  }
  return out;
}

/** The `host:port` of a URL as the allow list spells it (default ports made explicit). */
export function hostPortOf(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `${url.hostname}:${port}`;
}

export const isAllowListed = (url: URL, allowHosts: ReadonlySet<string>) => allowHosts.has(hostPortOf(url));

/** The bare address of an IP-literal URL host (`[::1]` → `::1`), or null for a host name. */
export function ipLiteralOf(hostname: string): string | null {
  const bare = hostname.replace(/^\[|\]$/g, '');
  return net.isIP(bare) ? bare : null;
}

/**
 * Refuses, before connecting, a URL whose host is an IP literal outside public unicast (no
 * lookup will run for it). Host names are checked by `guardedLookup` at connect time.
 */
export function assertHostAllowed(url: URL, allowHosts: ReadonlySet<string>): void {
  if (isAllowListed(url, allowHosts)) return;
  const literal = ipLiteralOf(url.hostname);
  if (literal === null) return;
  const reason = blockedAddressReason(literal);
  if (reason) throw new BlockedAddressError(literal, literal, reason);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
export type LookupFunction = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void;

/**
 * The `lookup` of one request to `url`: resolves with the system resolver, then refuses the
 * connection when any resolved address is not public (a host mixing public and private
 * addresses is not trusted either). Exempt when the URL's `host:port` is allow-listed.
 */
export function guardedLookup(url: URL, allowHosts: ReadonlySet<string>, resolve: typeof dns.lookup = dns.lookup): LookupFunction {
  const exempt = isAllowListed(url, allowHosts);
  return (hostname, options, callback) => {
    const opts: dns.LookupOptions = typeof options === 'object' && options !== null ? options : {};
    resolve(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as dns.LookupAddress[];
      if (!list.length) return callback(Object.assign(new Error(`${hostname} resolved to no address`), { code: 'ENOTFOUND' }), []);
      if (!exempt) {
        for (const { address } of list) {
          const reason = blockedAddressReason(address);
          if (reason) return callback(new BlockedAddressError(hostname, address, reason) as NodeJS.ErrnoException, []);
        }
      }
      if (opts.all) callback(null, list);
      else callback(null, list[0].address, list[0].family);
    });
  };
}
