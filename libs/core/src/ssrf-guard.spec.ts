import type dns from 'node:dns';
import { describe, expect, it } from 'vitest';
import {
  BlockedAddressError,
  assertHostAllowed,
  blockedAddressReason,
  guardedLookup,
  hostPortOf,
  normaliseAllowHosts,
  parseIPv4,
  parseIPv6,
} from './ssrf-guard';

describe('blockedAddressReason', () => {
  it.each([
    ['0.0.0.0', '"this network"'],
    ['0.1.2.3', '"this network"'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.127.255.254', 'carrier-grade NAT'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.8', 'IETF protocol assignment'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', '6to4 relay'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
  ])('blocks IPv4 %s (%s)', (address, reason) => {
    expect(blockedAddressReason(address)).toContain(reason);
  });

  it.each([
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['fc00::1', 'unique local'],
    ['fd12:3456:789a::1', 'unique local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback (127.0.0.0/8) inside IPv6'],
    ['::ffff:7f00:1', 'loopback (127.0.0.0/8) inside IPv6'],
    ['::ffff:10.1.2.3', 'private (10.0.0.0/8) inside IPv6'],
    ['::ffff:169.254.169.254', 'link-local (169.254.0.0/16) inside IPv6'],
    ['64:ff9b::127.0.0.1', 'loopback (127.0.0.0/8) inside IPv6'],
    ['64:ff9b::a9fe:a9fe', 'link-local (169.254.0.0/16) inside IPv6'],
    ['64:ff9b:1::1', 'local-use NAT64'],
    ['::127.0.0.1', 'outside global unicast'],
    ['100::1', 'discard-only'],
    ['2001:db8::1', 'documentation'],
    ['2001::1', 'IETF protocol assignment'],
    ['2002:7f00:1::1', '6to4'],
    ['3fff::1', 'documentation'],
    ['4000::1', 'outside global unicast'],
  ])('blocks IPv6 %s (%s)', (address, reason) => {
    expect(blockedAddressReason(address)).toContain(reason);
  });

  it.each(['8.8.8.8', '1.1.1.1', '47.246.1.1', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.167.255.255', '198.17.255.255', '198.20.0.0', '223.255.255.255', '2606:4700::1111', '2400:3200::1', '::ffff:8.8.8.8', '64:ff9b::808:808'])(
    'lets public unicast %s through',
    (address) => {
      expect(blockedAddressReason(address)).toBeNull();
    },
  );

  it('blocks anything that is not an address', () => {
    expect(blockedAddressReason('localhost')).toBe('unrecognised');
    expect(blockedAddressReason('2130706433')).toBe('unrecognised');
    expect(blockedAddressReason('127.1')).toBe('unrecognised');
    expect(blockedAddressReason('0x7f000001')).toBe('unrecognised');
    expect(blockedAddressReason('')).toBe('unrecognised');
  });
});

describe('address parsing', () => {
  it('reads only strict dotted quads as IPv4', () => {
    expect(parseIPv4('127.0.0.1')).toBe(0x7f000001n);
    expect(parseIPv4('127.1')).toBeNull();
    expect(parseIPv4('0127.0.0.1')).toBeNull();
    expect(parseIPv4('256.0.0.1')).toBeNull();
  });

  it('reads compressed, bracketed and IPv4-tailed IPv6', () => {
    expect(parseIPv6('::1')).toBe(1n);
    expect(parseIPv6('[::1]')).toBe(1n);
    expect(parseIPv6('::ffff:1.2.3.4')).toBe(0xffff01020304n);
    expect(parseIPv6('1::')).toBe(1n << 112n);
    expect(parseIPv6('not-an-address')).toBeNull();
  });
});

describe('assertHostAllowed (IP-literal hosts, checked before connecting)', () => {
  const none = normaliseAllowHosts([]);
  // WHATWG URL parsing normalises the odd IPv4 spellings; every one must still be caught.
  it.each([
    'http://127.0.0.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://127.1/',
    'http://0177.0.0.1/',
    'http://017700000001/',
    'http://0x7f.1/',
    'http://127.0.0.1.:8080/',
    'http://%31%32%37.0.0.1/',
    'http://0/',
    'http://[::1]/',
    'http://[0:0:0:0:0:0:0:1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[64:ff9b::7f00:1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fd00::1]/',
  ])('refuses %s', (raw) => {
    expect(() => assertHostAllowed(new URL(raw), none)).toThrow(BlockedAddressError);
  });

  it('leaves host names to the connect-time lookup and lets public literals through', () => {
    expect(() => assertHostAllowed(new URL('http://localhost/'), none)).not.toThrow();
    expect(() => assertHostAllowed(new URL('http://8.8.8.8/'), none)).not.toThrow();
    expect(() => assertHostAllowed(new URL('http://[2606:4700::1111]/'), none)).not.toThrow();
  });

  it('exempts exactly the allow-listed host:port, however it is spelt', () => {
    const allow = normaliseAllowHosts(['127.0.0.1:8080', '[0:0::1]:9000']);
    expect(() => assertHostAllowed(new URL('http://127.0.0.1:8080/a.jpg'), allow)).not.toThrow();
    expect(() => assertHostAllowed(new URL('http://2130706433:8080/a.jpg'), allow)).not.toThrow();
    expect(() => assertHostAllowed(new URL('http://[::1]:9000/a.jpg'), allow)).not.toThrow();
    expect(() => assertHostAllowed(new URL('http://127.0.0.1:8081/a.jpg'), allow)).toThrow(BlockedAddressError);
    expect(() => assertHostAllowed(new URL('http://127.0.0.1/a.jpg'), allow)).toThrow(BlockedAddressError);
    expect(() => assertHostAllowed(new URL('http://[::1]:8080/a.jpg'), allow)).toThrow(BlockedAddressError);
  });

  it('spells default ports out when matching', () => {
    expect(hostPortOf(new URL('https://cdn.example/a.jpg'))).toBe('cdn.example:443');
    expect(hostPortOf(new URL('http://cdn.example/a.jpg'))).toBe('cdn.example:80');
    expect(normaliseAllowHosts(['CDN.Example:80', 'cdn.example:443'])).toEqual(new Set(['cdn.example:80', 'cdn.example:443']));
  });
});

describe('guardedLookup (host names, checked at connect time)', () => {
  type Answer = { address: string; family: number }[];
  const resolver = (answers: Record<string, Answer>) =>
    ((hostname: string, _options: dns.LookupOptions, callback: (err: Error | null, addresses: Answer) => void) => {
      const found = answers[hostname];
      if (!found) callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      else callback(null, found);
    }) as unknown as typeof dns.lookup;

  const lookup = (url: string, allow: string[], answers: Record<string, Answer>, all = false) =>
    new Promise<{ err: Error | null; address: unknown; family?: number }>((resolve) => {
      const u = new URL(url);
      guardedLookup(u, normaliseAllowHosts(allow), resolver(answers))(u.hostname, { all }, (err, address, family) => resolve({ err, address, family }));
    });

  it('refuses a name that resolves to a private address, naming both', async () => {
    const { err } = await lookup('http://rebind.example/a.jpg', [], { 'rebind.example': [{ address: '10.0.0.5', family: 4 }] });
    expect(err).toBeInstanceOf(BlockedAddressError);
    expect(err!.message).toContain('rebind.example resolves to 10.0.0.5, a private (10.0.0.0/8) address');
  });

  it('refuses localhost, whatever it resolves to', async () => {
    for (const address of ['127.0.0.1', '::1']) {
      const { err } = await lookup('http://localhost/a.jpg', [], { localhost: [{ address, family: address.includes(':') ? 6 : 4 }] });
      expect(err).toBeInstanceOf(BlockedAddressError);
    }
  });

  it('refuses a name with one private address among public ones', async () => {
    const { err } = await lookup('https://mixed.example/a.jpg', [], {
      'mixed.example': [
        { address: '8.8.8.8', family: 4 },
        { address: '192.168.0.10', family: 4 },
      ],
    });
    expect(err).toBeInstanceOf(BlockedAddressError);
  });

  it('hands public addresses on, one or all as asked', async () => {
    const answers = { 'cdn.example': [{ address: '2606:4700::1111', family: 6 }, { address: '8.8.8.8', family: 4 }] };
    expect(await lookup('https://cdn.example/a.jpg', [], answers)).toEqual({ err: null, address: '2606:4700::1111', family: 6 });
    expect((await lookup('https://cdn.example/a.jpg', [], answers, true)).address).toEqual(answers['cdn.example']);
  });

  it('exempts an allow-listed host:port only', async () => {
    const answers = { 'intranet.cdn': [{ address: '10.1.1.1', family: 4 }] };
    expect((await lookup('http://intranet.cdn:8080/a.jpg', ['intranet.cdn:8080'], answers)).err).toBeNull();
    expect((await lookup('http://intranet.cdn:8081/a.jpg', ['intranet.cdn:8080'], answers)).err).toBeInstanceOf(BlockedAddressError);
  });

  it('passes resolver errors through', async () => {
    const { err } = await lookup('http://nowhere.example/a.jpg', [], {});
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });
});
