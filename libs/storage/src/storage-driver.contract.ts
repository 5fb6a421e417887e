// The one test suite every StorageDriver passes unchanged (fs now, s3 later): what the rest of
// 1688sync may rely on, whatever stores the bytes. A driver's spec calls
// describeStorageDriverContract() with a factory that gives each test a fresh, empty store.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidStorageKeyError, type StorageDriver, StorageObjectNotFoundError, type StoredObject, type UnfinishedWrite } from './storage-driver';

export interface StorageDriverUnderTest {
  driver: StorageDriver;
  cleanup(): Promise<void>;
  /**
   * Leaves what a writer killed half-way through a put of `key` leaves, the driver's own way
   * (fs: its temp file, under the driver's temp naming; s3: its multipart upload, one part sent).
   */
  abandonWrite(key: string, bytes: Buffer): Promise<void>;
  /** Sets an unfinished write's last sign of life `hours` back (0: now, as if written to again). */
  ageUnfinishedWrite(write: UnfinishedWrite, hours: number): Promise<void>;
}

const JPEG = { contentType: 'image/jpeg' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function collect<T = StoredObject>(objects: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const object of objects) out.push(object);
  return out;
}

async function keysOf(objects: AsyncIterable<StoredObject>): Promise<string[]> {
  return (await collect(objects)).map((o) => o.key);
}

/** The error an operation fails with, whether it throws at once or rejects later. */
export async function failureOf(operation: () => unknown): Promise<unknown> {
  try {
    await operation();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Bounded poll on a condition (no sleeps in tests). */
async function until(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A body the test feeds by hand, so a put can be observed half-way. */
function handFedStream() {
  let pulled = 0;
  const stream = new Readable({
    read() {
      pulled++;
    },
  });
  return {
    stream,
    /** Pushes a chunk and waits until the driver has taken it (and asked for more). */
    async feed(chunk: Buffer) {
      const before = pulled;
      stream.push(chunk);
      await until('the driver to read the chunk', () => stream.readableLength === 0 && pulled > before);
    },
  };
}

/** `count` bytes in 64 KiB chunks, produced on demand. */
function generatedStream(count: number, seed: Buffer): { stream: Readable; expectedSha256: string } {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < count; offset += 65_536) {
    const chunk = Buffer.alloc(Math.min(65_536, count - offset), seed);
    chunk.writeUInt32BE(offset, 0);
    hash.update(chunk);
    chunks.push(chunk);
  }
  return { stream: Readable.from(chunks), expectedSha256: hash.digest('hex') };
}

const INVALID_KEYS = ['../x', 'a/../../x', '/abs', 'a//b', 'a/./b', 'a\\b', 'a/b\u0000c', '', 'a/', '.', '..'];

export function describeStorageDriverContract(name: string, makeDriver: () => Promise<StorageDriverUnderTest>) {
  describe(`the ${name} storage driver (StorageDriver contract)`, () => {
    let underTest: StorageDriverUnderTest;
    let driver: StorageDriver;

    beforeEach(async () => {
      underTest = await makeDriver();
      driver = underTest.driver;
    });
    afterEach(async () => {
      await underTest.cleanup();
    });

    describe('put, get and stat', () => {
      it('stores a Buffer and gives the same bytes back, with size and SHA-256', async () => {
        const bytes = randomBytes(10_000);
        const stored = await driver.put('products/abc/p1/original/i1.jpg', bytes, JPEG);
        expect(stored).toMatchObject({ key: 'products/abc/p1/original/i1.jpg', size: 10_000, sha256: sha256(bytes) });
        expect(stored.modifiedAt).toBeInstanceOf(Date);

        expect(await readAll(await driver.get('products/abc/p1/original/i1.jpg'))).toEqual(bytes);
        const stat = await driver.stat('products/abc/p1/original/i1.jpg');
        expect(stat).toMatchObject({ key: 'products/abc/p1/original/i1.jpg', size: 10_000 });
        expect(stat!.modifiedAt).toBeInstanceOf(Date);
        if (stat!.sha256 !== undefined) expect(stat!.sha256).toBe(sha256(bytes));
      });

      it('stores a stream body', async () => {
        const chunks = [randomBytes(1000), randomBytes(1), randomBytes(70_000)];
        const stored = await driver.put('a/stream.bin', Readable.from(chunks), { contentType: 'application/octet-stream' });
        const bytes = Buffer.concat(chunks);
        expect(stored).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });
        expect(await readAll(await driver.get('a/stream.bin'))).toEqual(bytes);
      });

      it('stores an empty object', async () => {
        expect(await driver.put('a/empty', Buffer.alloc(0), JPEG)).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)) });
        expect(await readAll(await driver.get('a/empty'))).toEqual(Buffer.alloc(0));
        expect(await driver.stat('a/empty')).toMatchObject({ size: 0 });
      });

      it('streams a 5 MB body through without changing a byte', async () => {
        const size = 5 * 1024 * 1024 + 123;
        const { stream, expectedSha256 } = generatedStream(size, Buffer.from('1688'));
        expect(await driver.put('big/object.bin', stream, { contentType: 'application/octet-stream' })).toMatchObject({ size, sha256: expectedSha256 });
        expect(sha256(await readAll(await driver.get('big/object.bin')))).toBe(expectedSha256);
        expect((await driver.stat('big/object.bin'))!.size).toBe(size);
      });

      it('overwrites an existing key', async () => {
        await driver.put('a/b.jpg', Buffer.from('first version, longer'), JPEG);
        await driver.put('a/b.jpg', Buffer.from('second'), JPEG);
        expect((await readAll(await driver.get('a/b.jpg'))).toString()).toBe('second');
        expect((await driver.stat('a/b.jpg'))!.size).toBe(6);
      });

      it('keeps one whole version when the same key is written concurrently', async () => {
        const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(50_000 + i, String(i)));
        await Promise.all(versions.map((v) => driver.put('a/raced.jpg', Readable.from([v.subarray(0, 1000), v.subarray(1000)]), JPEG)));
        const final = await readAll(await driver.get('a/raced.jpg'));
        expect(versions.some((v) => v.equals(final))).toBe(true);
        expect(await keysOf(driver.list('a/'))).toEqual(['a/raced.jpg']);
      });

      it('answers null from stat and StorageObjectNotFoundError from get for an absent key', async () => {
        expect(await driver.stat('nothing/here.jpg')).toBeNull();
        const err = await failureOf(() => driver.get('nothing/here.jpg'));
        expect(err).toBeInstanceOf(StorageObjectNotFoundError);
        expect((err as StorageObjectNotFoundError).key).toBe('nothing/here.jpg');
      });
    });

    describe('atomic writes', () => {
      it('never shows a half-written object: the key is absent until the put completes', async () => {
        const body = handFedStream();
        const put = driver.put('products/abc/p1/original/slow.jpg', body.stream, JPEG);
        await body.feed(randomBytes(100_000));
        await body.feed(randomBytes(100_000));

        expect(await driver.stat('products/abc/p1/original/slow.jpg')).toBeNull();
        expect(await failureOf(() => driver.get('products/abc/p1/original/slow.jpg'))).toBeInstanceOf(StorageObjectNotFoundError);
        expect(await keysOf(driver.list('products/'))).toEqual([]);

        body.stream.push(null);
        expect(await put).toMatchObject({ size: 200_000 });
        expect(await keysOf(driver.list('products/'))).toEqual(['products/abc/p1/original/slow.jpg']);
      });

      it('keeps serving the old content while an overwrite is in progress', async () => {
        await driver.put('a/b.jpg', Buffer.from('old content'), JPEG);
        const body = handFedStream();
        const put = driver.put('a/b.jpg', body.stream, JPEG);
        await body.feed(Buffer.from('new content, part one; '));

        expect((await readAll(await driver.get('a/b.jpg'))).toString()).toBe('old content');
        expect(await driver.stat('a/b.jpg')).toMatchObject({ size: 11 });
        expect(await keysOf(driver.list('a/'))).toEqual(['a/b.jpg']);

        body.stream.push(Buffer.from('part two'));
        body.stream.push(null);
        await put;
        expect((await readAll(await driver.get('a/b.jpg'))).toString()).toBe('new content, part one; part two');
      });

      it('leaves no object and nothing listable when the body fails half-way', async () => {
        const body = handFedStream();
        const put = driver.put('products/abc/p1/original/broken.jpg', body.stream, JPEG);
        await body.feed(randomBytes(50_000));
        body.stream.destroy(new Error('connection reset by the source'));

        expect(await failureOf(() => put)).toBeInstanceOf(Error);
        expect(await driver.stat('products/abc/p1/original/broken.jpg')).toBeNull();
        expect(await keysOf(driver.list(''))).toEqual([]);
      });

      it('keeps the old content when an overwrite fails half-way', async () => {
        await driver.put('a/b.jpg', Buffer.from('old content'), JPEG);
        const body = handFedStream();
        const put = driver.put('a/b.jpg', body.stream, JPEG);
        await body.feed(randomBytes(10_000));
        body.stream.destroy(new Error('aborted'));

        expect(await failureOf(() => put)).toBeInstanceOf(Error);
        expect((await readAll(await driver.get('a/b.jpg'))).toString()).toBe('old content');
        expect(await keysOf(driver.list(''))).toEqual(['a/b.jpg']);
      });
    });

    describe('copy', () => {
      it('copies the bytes under a new key', async () => {
        const bytes = randomBytes(30_000);
        await driver.put('products/abc/p1/original/i1.jpg', bytes, JPEG);
        const copied = await driver.copy('products/abc/p1/original/i1.jpg', 'products/def/p2/original/i2.jpg');
        expect(copied).toMatchObject({ key: 'products/def/p2/original/i2.jpg', size: 30_000 });
        if (copied.sha256 !== undefined) expect(copied.sha256).toBe(sha256(bytes));
        expect(await readAll(await driver.get('products/def/p2/original/i2.jpg'))).toEqual(bytes);
        expect(await readAll(await driver.get('products/abc/p1/original/i1.jpg'))).toEqual(bytes);
      });

      it('makes an independent copy: overwriting or deleting the source later leaves the copy as it was', async () => {
        await driver.put('src/a.jpg', Buffer.from('original bytes'), JPEG);
        await driver.copy('src/a.jpg', 'dst/a.jpg');
        await driver.put('src/a.jpg', Buffer.from('replaced'), JPEG);
        expect((await readAll(await driver.get('dst/a.jpg'))).toString()).toBe('original bytes');

        await driver.put('dst/a.jpg', Buffer.from('copy changed'), JPEG);
        expect((await readAll(await driver.get('src/a.jpg'))).toString()).toBe('replaced');

        await driver.delete('src/a.jpg');
        expect((await readAll(await driver.get('dst/a.jpg'))).toString()).toBe('copy changed');
      });

      it('overwrites an existing destination', async () => {
        await driver.put('src/a.jpg', Buffer.from('new'), JPEG);
        await driver.put('dst/a.jpg', Buffer.from('old destination'), JPEG);
        await driver.copy('src/a.jpg', 'dst/a.jpg');
        expect((await readAll(await driver.get('dst/a.jpg'))).toString()).toBe('new');
      });

      it('fails with StorageObjectNotFoundError when the source is absent, creating nothing', async () => {
        expect(await failureOf(() => driver.copy('src/none.jpg', 'dst/none.jpg'))).toBeInstanceOf(StorageObjectNotFoundError);
        expect(await driver.stat('dst/none.jpg')).toBeNull();
      });
    });

    describe('delete', () => {
      it('answers true when it deleted something and false when there was nothing', async () => {
        await driver.put('products/abc/p1/thumbnail/i1.jpg', Buffer.from('x'), JPEG);
        expect(await driver.delete('products/abc/p1/thumbnail/i1.jpg')).toBe(true);
        expect(await driver.stat('products/abc/p1/thumbnail/i1.jpg')).toBeNull();
        expect(await failureOf(() => driver.get('products/abc/p1/thumbnail/i1.jpg'))).toBeInstanceOf(StorageObjectNotFoundError);
        expect(await driver.delete('products/abc/p1/thumbnail/i1.jpg')).toBe(false);
        expect(await driver.delete('never/existed.jpg')).toBe(false);
      });

      it('deletes only the key it is given', async () => {
        await driver.put('p/a.jpg', Buffer.from('a'), JPEG);
        await driver.put('p/a.jpg.bak', Buffer.from('b'), JPEG);
        await driver.put('p/a/inner.jpg', Buffer.from('c'), JPEG);
        expect(await driver.delete('p/a.jpg')).toBe(true);
        expect(await keysOf(driver.list('p/'))).toEqual(['p/a.jpg.bak', 'p/a/inner.jpg']);
      });

      it('lets the same key be written again after a delete', async () => {
        await driver.put('p/q/r.jpg', Buffer.from('one'), JPEG);
        await driver.delete('p/q/r.jpg');
        await driver.put('p/q/r.jpg', Buffer.from('two'), JPEG);
        expect((await readAll(await driver.get('p/q/r.jpg'))).toString()).toBe('two');
      });
    });

    describe('list', () => {
      const KEYS = [
        'other/file.jpg',
        'products/ab/direct.jpg',
        'products/abc/p1/compressed/i1.jpg',
        'products/abc/p1/original/i1.png',
        'products/abc/p1/thumbnail/i1.jpg',
        'products/abd/p2/original/i2.jpg',
        'products/b00/p3/original/i3.jpg',
        'top.jpg',
      ];

      beforeEach(async () => {
        for (const key of KEYS) await driver.put(key, Buffer.from(key), JPEG);
      });

      it('lists every object, nested at any depth, in ascending key order, with sizes', async () => {
        const all = await collect(driver.list(''));
        expect(all.map((o) => o.key)).toEqual(KEYS);
        for (const object of all) {
          expect(object.size).toBe(Buffer.byteLength(object.key));
          expect(object.modifiedAt).toBeInstanceOf(Date);
        }
      });

      it('lists only the keys under a folder prefix', async () => {
        expect(await keysOf(driver.list('products/abc/'))).toEqual(KEYS.filter((k) => k.startsWith('products/abc/')));
        expect(await keysOf(driver.list('products/abc/p1/original/'))).toEqual(['products/abc/p1/original/i1.png']);
        expect(await keysOf(driver.list('products/ab/'))).toEqual(['products/ab/direct.jpg']);
      });

      it('treats a prefix ending inside a segment as a plain string prefix', async () => {
        expect(await keysOf(driver.list('products/ab'))).toEqual(KEYS.filter((k) => k.startsWith('products/ab')));
        expect(await keysOf(driver.list('products/abc/p1/original/i1'))).toEqual(['products/abc/p1/original/i1.png']);
        expect(await keysOf(driver.list('t'))).toEqual(['top.jpg']);
        expect(await keysOf(driver.list('products/abc/p1/thumbnail/i1.jpg'))).toEqual(['products/abc/p1/thumbnail/i1.jpg']);
      });

      it('lists nothing for a prefix that matches nothing', async () => {
        expect(await keysOf(driver.list('missing/'))).toEqual([]);
        expect(await keysOf(driver.list('products/zzz'))).toEqual([]);
        expect(await keysOf(driver.list('top.jpg/'))).toEqual([]);
      });

      it('no longer lists a deleted key', async () => {
        await driver.delete('products/abd/p2/original/i2.jpg');
        expect(await keysOf(driver.list('products/'))).not.toContain('products/abd/p2/original/i2.jpg');
        expect(await keysOf(driver.list('products/abd'))).toEqual([]);
      });
    });

    describe('list at scale', () => {
      it('streams thousands of objects across many folders, each exactly once', async () => {
        const keys: string[] = [];
        for (let shard = 0; shard < 40; shard++) {
          for (let i = 0; i < 50; i++) keys.push(`many/${shard.toString(16).padStart(3, '0')}/p${i}/original/i.jpg`);
        }
        for (let i = 0; i < keys.length; i += 100) {
          await Promise.all(keys.slice(i, i + 100).map((key) => driver.put(key, Buffer.from('x'), JPEG)));
        }
        const listed = await keysOf(driver.list('many/'));
        expect(listed).toHaveLength(2_000);
        expect(listed).toEqual([...keys].sort());
      }, 120_000); // 2,000 durable writes (each fsynced, or a network round trip) first

      it('can be stopped early without reading the rest', async () => {
        for (let i = 0; i < 30; i++) await driver.put(`early/${String(i).padStart(2, '0')}/x.jpg`, Buffer.from('x'), JPEG);
        const seen: string[] = [];
        for await (const object of driver.list('early/')) {
          seen.push(object.key);
          if (seen.length === 3) break;
        }
        expect(seen).toEqual(['early/00/x.jpg', 'early/01/x.jpg', 'early/02/x.jpg']);
      });
    });

    describe('unfinished writes (what a killed writer leaves)', () => {
      const HOUR = 3_600_000;
      const unfinished = (prefix: string) => collect(driver.listUnfinishedWrites(prefix));
      const unfinishedKeys = async (prefix: string) => (await unfinished(prefix)).map((w) => w.key);

      it('lists what a writer killed half-way through a put leaves as an unfinished write of its key, never as an object', async () => {
        await underTest.abandonWrite('products/abc/p1/original/i1.jpg', randomBytes(1000));

        expect(await keysOf(driver.list(''))).toEqual([]);
        expect(await driver.stat('products/abc/p1/original/i1.jpg')).toBeNull();
        const writes = await unfinished('products/');
        expect(writes).toEqual([{ key: 'products/abc/p1/original/i1.jpg', id: expect.any(String), lastWrittenAt: expect.any(Date), ...(writes[0]?.size === undefined ? {} : { size: 1000 }) }]);
        expect(Math.abs(writes[0].lastWrittenAt.getTime() - Date.now())).toBeLessThan(60_000);
      });

      it('lists the unfinished writes under a prefix, each once, and leaves the object of the same key whole', async () => {
        await driver.put('products/abc/p1/original/i1.jpg', Buffer.from('whole'), JPEG);
        await underTest.abandonWrite('products/abc/p1/original/i1.jpg', randomBytes(100)); // a rewrite, killed
        await underTest.abandonWrite('products/abd/p2/original/i2.jpg', randomBytes(100));
        await underTest.abandonWrite('other/i3.jpg', randomBytes(100));

        expect(await unfinishedKeys('products/ab')).toEqual(['products/abc/p1/original/i1.jpg', 'products/abd/p2/original/i2.jpg']);
        expect(await unfinishedKeys('products/abc/')).toEqual(['products/abc/p1/original/i1.jpg']);
        expect(await unfinishedKeys('missing/')).toEqual([]);
        expect(await unfinishedKeys('')).toHaveLength(3);
        expect(await keysOf(driver.list(''))).toEqual(['products/abc/p1/original/i1.jpg']);
        expect((await readAll(await driver.get('products/abc/p1/original/i1.jpg'))).toString()).toBe('whole');
      });

      it('has none after puts that complete or fail', async () => {
        await driver.put('a/whole.jpg', randomBytes(1000), JPEG);
        const body = handFedStream();
        const put = driver.put('a/broken.jpg', body.stream, JPEG);
        await body.feed(randomBytes(10_000));
        body.stream.destroy(new Error('connection reset by the source'));
        expect(await failureOf(() => put)).toBeInstanceOf(Error);

        expect(await unfinished('')).toEqual([]);
      });

      it('removes one quiet since the time given, keeps one written to after it, and finds a removed one gone', async () => {
        await underTest.abandonWrite('products/abc/p1/original/old.jpg', randomBytes(100));
        await underTest.ageUnfinishedWrite((await unfinished('products/'))[0], 48);
        await underTest.abandonWrite('products/abc/p1/original/young.jpg', randomBytes(100));
        const [old, young] = await unfinished('products/');
        expect([old.key, young.key]).toEqual(['products/abc/p1/original/old.jpg', 'products/abc/p1/original/young.jpg']);
        const quietSince = new Date(Date.now() - 24 * HOUR);

        expect(await driver.removeUnfinishedWrite(old, { quietSince })).toBe('removed');
        expect(await driver.removeUnfinishedWrite(young, { quietSince })).toBe('still-written');
        expect(await driver.removeUnfinishedWrite(old, { quietSince })).toBe('gone');
        expect(await unfinishedKeys('')).toEqual(['products/abc/p1/original/young.jpg']);
      });

      it('looks again right before removing: one listed as quiet but written to since is kept', async () => {
        await underTest.abandonWrite('products/abc/p1/original/i1.jpg', randomBytes(100));
        const [listed] = await unfinished('products/');
        await underTest.ageUnfinishedWrite(listed, 48);
        const [quiet] = await unfinished('products/');
        expect(quiet.lastWrittenAt.getTime()).toBeLessThan(Date.now() - 47 * HOUR);

        await underTest.ageUnfinishedWrite(quiet, 0); // its writer is alive after all
        expect(await driver.removeUnfinishedWrite(quiet, { quietSince: new Date(Date.now() - 24 * HOUR) })).toBe('still-written');
        expect(await unfinishedKeys('')).toEqual(['products/abc/p1/original/i1.jpg']);
      });
    });

    describe('keys', () => {
      it.each(INVALID_KEYS)('refuses the key %j for every operation with InvalidStorageKeyError', async (bad) => {
        await driver.put('good/key.jpg', Buffer.from('x'), JPEG);
        const operations: [string, () => unknown][] = [
          ['put', () => driver.put(bad, Buffer.from('x'), JPEG)],
          ['put (stream)', () => driver.put(bad, Readable.from([Buffer.from('x')]), JPEG)],
          ['get', () => driver.get(bad)],
          ['stat', () => driver.stat(bad)],
          ['delete', () => driver.delete(bad)],
          ['copy from', () => driver.copy(bad, 'good/copy.jpg')],
          ['copy to', () => driver.copy('good/key.jpg', bad)],
          ['publicUrl', () => driver.publicUrl(bad)],
        ];
        for (const [operation, run] of operations) {
          expect(await failureOf(run), `${operation} ${JSON.stringify(bad)}`).toBeInstanceOf(InvalidStorageKeyError);
        }
        expect(await keysOf(driver.list(''))).toEqual(['good/key.jpg']);
      });

      it('refuses a list prefix that climbs out of the store', async () => {
        expect(await failureOf(() => collect(driver.list('../')))).toBeInstanceOf(InvalidStorageKeyError);
        expect(await failureOf(() => collect(driver.list('/etc/')))).toBeInstanceOf(InvalidStorageKeyError);
      });

      it('gives the public URL of a key: PUBLIC_BASE_URL, one slash, the key', () => {
        const key = 'products/abc/0b7d1b6e-0000-4000-8000-000000000001/thumbnail/0b7d1b6e-0000-4000-8000-000000000002.jpg';
        const url = driver.publicUrl(key);
        expect(() => new URL(url)).not.toThrow();
        expect(url.endsWith(`/${key}`)).toBe(true);
        expect(url.slice(0, -key.length - 1).endsWith('/')).toBe(false);
      });
    });
  });
}
