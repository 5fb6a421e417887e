// The s3 driver against a real S3-compatible server (s3rver in its own process, see
// libs/testing/src/s3-server.ts): the StorageDriver contract, then what only S3 has — object
// metadata, Cache-Control, multipart uploads, paginated listings, a missing bucket.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { type TestS3Server, startS3Server } from '@1688sync/testing';
import { loadConfig } from '@1688sync/config';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IMMUTABLE_CACHE_CONTROL, imageKey } from './keys';
import { MIN_PART_SIZE_BYTES, S3StorageError, createS3Client, createS3Driver } from './s3-driver';
import { createStorageDriver } from './storage';
import { type StorageDriver, StorageObjectNotFoundError } from './storage-driver';
import { collect, describeStorageDriverContract, failureOf, readAll } from './storage-driver.contract';

const JPEG = { contentType: 'image/jpeg' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const PRODUCT = '5b0c1f3e-8a44-4c1e-9d1b-2f6a7c9e0a11';
const IMAGE = 'c2d4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e4f';

let server: TestS3Server;
let raw: S3Client;
let serial = 0;

beforeAll(async () => {
  server = await startS3Server({ label: 's3-driver' });
  raw = server.client();
});
afterAll(async () => {
  raw?.destroy();
  await server?.stop();
});

/** A driver on its own key prefix of the one bucket: each test starts from an empty store. */
function freshDriver(options: { listPageSize?: number; partSizeBytes?: number } = {}): { driver: StorageDriver; prefix: string } {
  const prefix = `t${++serial}-${randomBytes(3).toString('hex')}/`;
  return { driver: createS3Driver(server.s3Config, { publicBaseUrl: `${server.endpoint}/${server.bucket}`, keyPrefix: prefix, ...options }), prefix };
}

describeStorageDriverContract('s3', async () => {
  // A small page, so every listing of the contract crosses pages.
  const { driver, prefix } = freshDriver({ listPageSize: 7 });
  const abandoned: { Key: string; UploadId: string }[] = [];
  return {
    driver,
    // The other specs count the server's open uploads: abort what this test left open.
    async cleanup() {
      for (const upload of abandoned) await raw.send(new AbortMultipartUploadCommand({ Bucket: server.bucket, ...upload })).catch(() => undefined);
    },
    // A writer killed during a multipart upload: begun, a part sent, never completed nor aborted.
    async abandonWrite(key, bytes) {
      const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: server.bucket, Key: prefix + key, ContentType: 'image/jpeg' }));
      abandoned.push({ Key: prefix + key, UploadId: UploadId! });
      await raw.send(new UploadPartCommand({ Bucket: server.bucket, Key: prefix + key, UploadId, PartNumber: 1, Body: bytes }));
    },
    ageUnfinishedWrite: (write, hours) => server.ageMultipartUpload(write.id, hours),
  };
});




const head = (key: string) => raw.send(new HeadObjectCommand({ Bucket: server.bucket, Key: key }));

describe('the s3 storage driver on a real S3-compatible server', () => {
  let driver: StorageDriver;
  let prefix: string;
  beforeEach(() => {
    ({ driver, prefix } = freshDriver({ listPageSize: 2 }));
  });

  describe('object metadata', () => {
    it('keeps the SHA-256 of the bytes in x-amz-meta-sha256, and stat returns it', async () => {
      const bytes = randomBytes(20_000);
      await driver.put('a/b.jpg', bytes, JPEG);
      const object = await head(`${prefix}a/b.jpg`);
      expect(object.Metadata).toEqual({ sha256: sha256(bytes) });
      expect(object.ContentType).toBe('image/jpeg');
      expect(await driver.stat('a/b.jpg')).toMatchObject({ size: 20_000, sha256: sha256(bytes), contentType: 'image/jpeg' });
    });

    it('hashes a streamed body while it reads it', async () => {
      const chunks = [randomBytes(3_000), randomBytes(5)];
      const stored = await driver.put('a/streamed.bin', Readable.from(chunks), { contentType: 'application/octet-stream' });
      const bytes = Buffer.concat(chunks);
      expect(stored.sha256).toBe(sha256(bytes));
      expect((await head(`${prefix}a/streamed.bin`)).Metadata?.sha256).toBe(sha256(bytes));
    });

    it('stores the SHA-256 the caller computed, without hashing the bytes again', async () => {
      const callers = 'c'.repeat(64);
      expect(await driver.put('a/known.jpg', Buffer.from('photo'), { ...JPEG, sha256: callers })).toMatchObject({ sha256: callers });
      expect((await driver.stat('a/known.jpg'))!.sha256).toBe(callers);
    });

    it('keeps the SHA-256 on a copy, and the copy follows its own key for Cache-Control', async () => {
      const bytes = randomBytes(1_000);
      const original = imageKey(PRODUCT, IMAGE, 'original', 'jpg');
      await driver.put(original, bytes, { ...JPEG, cacheControl: 'public, max-age=86400' });
      const copied = await driver.copy(original, 'other/copy.jpg');
      expect(copied).toMatchObject({ key: 'other/copy.jpg', size: 1_000, sha256: sha256(bytes) });
      const object = await head(`${prefix}other/copy.jpg`);
      expect(object.Metadata?.sha256).toBe(sha256(bytes));
      expect(object.CacheControl).toBe('public, max-age=86400');
      expect(object.ContentType).toBe('image/jpeg');

      await driver.copy(original, imageKey(PRODUCT, IMAGE, 'thumbnail'));
      expect((await head(`${prefix}${imageKey(PRODUCT, IMAGE, 'thumbnail')}`)).CacheControl).toBe(IMMUTABLE_CACHE_CONTROL);
    });

    it('lists without the SHA-256 (a listing carries no metadata) but with size and time', async () => {
      await driver.put('l/a.jpg', Buffer.from('abc'), JPEG);
      const [listed] = await collect(driver.list('l/'));
      expect(listed).toMatchObject({ key: 'l/a.jpg', size: 3, contentType: 'image/jpeg' });
      expect(listed.sha256).toBeUndefined();
      expect(Math.abs(listed.modifiedAt.getTime() - Date.now())).toBeLessThan(60_000);
    });
  });

  describe('Cache-Control', () => {
    it('marks thumbnails, compressed copies and their extra formats immutable, whatever the caller asks', async () => {
      for (const variant of ['thumbnail', 'compressed', 'webp', 'avif'] as const) {
        const key = imageKey(PRODUCT, IMAGE, variant);
        await driver.put(key, Buffer.from(variant), { contentType: 'image/jpeg', cacheControl: 'no-cache' });
        expect((await head(prefix + key)).CacheControl, variant).toBe(IMMUTABLE_CACHE_CONTROL);
      }
    });

    it("gives other keys the caller's Cache-Control, or none", async () => {
      const original = imageKey(PRODUCT, IMAGE, 'original', 'png');
      await driver.put(original, Buffer.from('png'), { contentType: 'image/png', cacheControl: 'public, max-age=86400' });
      expect((await head(prefix + original)).CacheControl).toBe('public, max-age=86400');
      await driver.put('backups/db.dump', Buffer.from('dump'), { contentType: 'application/octet-stream' });
      expect((await head(`${prefix}backups/db.dump`)).CacheControl).toBeUndefined();
    });

    it('is what a CDN in front of the bucket serves from the public URL', async () => {
      const key = imageKey(PRODUCT, IMAGE, 'thumbnail');
      await driver.put(key, Buffer.from('thumb'), JPEG);
      const res = await fetch(driver.publicUrl(key));
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe(IMMUTABLE_CACHE_CONTROL);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      expect(await res.text()).toBe('thumb');
    });
  });

  describe('multipart uploads', () => {
    const partSize = MIN_PART_SIZE_BYTES;
    let big: StorageDriver;
    let bigPrefix: string;
    beforeEach(() => {
      ({ driver: big, prefix: bigPrefix } = freshDriver({ partSizeBytes: partSize }));
    });

    /** `count` bytes in 1 MiB chunks, with their SHA-256. */
    function bytesOf(count: number) {
      const chunks: Buffer[] = [];
      for (let offset = 0; offset < count; offset += 1 << 20) chunks.push(randomBytes(Math.min(1 << 20, count - offset)));
      const all = Buffer.concat(chunks);
      return { chunks, all, sha256: sha256(all) };
    }

    it('uploads a stream larger than a part in parts, and records its SHA-256 once it is complete', async () => {
      const body = bytesOf(2 * partSize + 12_345);
      const stored = await big.put('big/stream.bin', Readable.from(body.chunks), { contentType: 'application/octet-stream' });
      expect(stored).toMatchObject({ size: body.all.length, sha256: body.sha256 });
      const object = await head(`${bigPrefix}big/stream.bin`);
      // A multipart ETag is "<md5 of the part md5s>-<parts>" on S3; s3rver gives a plain MD5.
      // Either way it is not the content's hash: ours is in the metadata.
      expect(object.Metadata?.sha256).toBe(body.sha256);
      expect(object.ContentLength).toBe(body.all.length);
      expect(object.ContentType).toBe('application/octet-stream');
      expect(sha256(await readAll(await big.get('big/stream.bin')))).toBe(body.sha256);
      expect(await server.pendingMultipartUploads()).toBe(0);
    }, 60_000);

    it('uploads a Buffer larger than a part in parts, with its SHA-256 from the start', async () => {
      const body = bytesOf(partSize + 1);
      const key = imageKey(PRODUCT, IMAGE, 'compressed');
      expect(await big.put(key, body.all, JPEG)).toMatchObject({ size: partSize + 1, sha256: body.sha256 });
      const object = await head(bigPrefix + key);
      expect(object.Metadata?.sha256).toBe(body.sha256);
      expect(object.CacheControl).toBe(IMMUTABLE_CACHE_CONTROL);
      expect(sha256(await readAll(await big.get(key)))).toBe(body.sha256);
    }, 60_000);

    it('leaves no object and no upload behind when a streamed body fails after parts were sent', async () => {
      const body = bytesOf(2 * partSize);
      let sent = 0;
      const failing = new Readable({
        read() {
          if (sent < body.chunks.length) this.push(body.chunks[sent++]);
          else this.destroy(new Error('the source hung up half-way'));
        },
      });
      const err = await failureOf(() => big.put('big/broken.bin', failing, { contentType: 'application/octet-stream' }));
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain('the source hung up half-way');
      expect(await big.stat('big/broken.bin')).toBeNull();
      expect(await collect(big.list(''))).toEqual([]);
      expect(await server.pendingMultipartUploads()).toBe(0);
      expect(failing.destroyed).toBe(true);
    }, 60_000);

    it('keeps the old object whole when an overwrite in parts fails', async () => {
      await big.put('big/kept.bin', Buffer.from('old and whole'), { contentType: 'application/octet-stream' });
      const body = bytesOf(partSize + 100);
      const failing = Readable.from(
        (async function* () {
          yield* body.chunks;
          throw new Error('gone');
        })(),
      );
      expect(await failureOf(() => big.put('big/kept.bin', failing, { contentType: 'application/octet-stream' }))).toBeInstanceOf(Error);
      expect((await readAll(await big.get('big/kept.bin'))).toString()).toBe('old and whole');
      expect(await server.pendingMultipartUploads()).toBe(0);
    }, 60_000);
  });

  describe('paginated listing', () => {
    it('walks the open multipart uploads page after page (pages of 2 here), two of one key included, each once', async () => {
      const keys = ['u/c.jpg', 'u/a.jpg', 'u/b.jpg', 'u/b.jpg', 'u/d.jpg'];
      const uploadIds: string[] = [];
      for (const key of keys) {
        const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: server.bucket, Key: prefix + key }));
        uploadIds.push(UploadId!);
      }
      try {
        const listed = await collect(driver.listUnfinishedWrites('u/'));
        expect(listed.map((w) => w.key)).toEqual([...keys].sort());
        expect(new Set(listed.map((w) => w.id))).toEqual(new Set(uploadIds));
      } finally {
        for (const [i, UploadId] of uploadIds.entries()) await raw.send(new AbortMultipartUploadCommand({ Bucket: server.bucket, Key: prefix + keys[i], UploadId }));
      }
    });

    it('walks page after page with continuation tokens (pages of 2 here), in key order, each key once', async () => {
      const keys = Array.from({ length: 11 }, (_, i) => `p/${String.fromCharCode(122 - i)}/${i}.jpg`);
      for (const key of keys) await driver.put(key, Buffer.from(key), JPEG);
      const listed = await collect(driver.list('p/'));
      expect(listed.map((o) => o.key)).toEqual([...keys].sort());
      expect(listed.map((o) => o.size)).toEqual([...keys].sort().map((k) => k.length));
    });

    it('asks for the next page only when the caller reads past the current one', async () => {
      for (let i = 0; i < 6; i++) await driver.put(`lazy/${i}.jpg`, Buffer.from('x'), JPEG);
      const pages: string[] = [];
      const counting = createS3Client(server.s3Config);
      counting.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'ListObjectsV2Command') pages.push(String((args.input as { ContinuationToken?: string }).ContinuationToken ?? 'first'));
          return next(args);
        },
        { step: 'initialize' },
      );
      const lazy = createS3Driver(server.s3Config, { publicBaseUrl: 'https://cdn.example.com', keyPrefix: prefix, listPageSize: 2, client: counting });
      const walk = lazy.list('lazy/')[Symbol.asyncIterator]();
      expect((await walk.next()).value).toMatchObject({ key: 'lazy/0.jpg' });
      expect((await walk.next()).value).toMatchObject({ key: 'lazy/1.jpg' });
      expect(pages).toHaveLength(1);
      expect((await walk.next()).value).toMatchObject({ key: 'lazy/2.jpg' });
      expect(pages).toHaveLength(2);
      await walk.return?.(undefined);
      counting.destroy();
    });

    it('skips objects whose names no driver method could take (a folder marker made by a console)', async () => {
      await driver.put('m/real.jpg', Buffer.from('x'), JPEG);
      await raw.send(new PutObjectCommand({ Bucket: server.bucket, Key: `${prefix}m/`, Body: Buffer.alloc(0) }));
      expect((await raw.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${prefix}m` }))).Contents?.map((o) => o.Key)).toEqual([`${prefix}m/`, `${prefix}m/real.jpg`]);
      expect((await collect(driver.list('m'))).map((o) => o.key)).toEqual(['m/real.jpg']);
    });
  });

  describe('keys and prefixes', () => {
    it('keeps its key prefix inside the bucket: object names and public URLs have it, keys and listings do not', async () => {
      await driver.put('x/y.jpg', Buffer.from('y'), JPEG);
      const listed = await raw.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: prefix }));
      expect(listed.Contents?.map((o) => o.Key)).toEqual([`${prefix}x/y.jpg`]);
      expect((await collect(driver.list(''))).map((o) => o.key)).toEqual(['x/y.jpg']);
      expect(driver.publicUrl('x/y.jpg')).toBe(`${server.endpoint}/${server.bucket}/${prefix}x/y.jpg`);
    });

    it('uses the keys as object names as they are without a prefix (images at the bucket root)', async () => {
      const plain = createS3Driver(server.s3Config, { publicBaseUrl: 'https://cdn.example.com/' });
      const key = `plain-${randomBytes(3).toString('hex')}/a.jpg`;
      await plain.put(key, Buffer.from('a'), JPEG);
      const object = await raw.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
      expect(await object.Body!.transformToString()).toBe('a');
      expect(plain.publicUrl(key)).toBe(`https://cdn.example.com/${key}`);
      expect(await plain.delete(key)).toBe(true);
    });
  });

  describe('the client settings', () => {
    it('sends a streamed body as plain bytes, so a store that does not decode aws-chunked keeps them exact', async () => {
      // The SDK's default (WHEN_SUPPORTED) would send this body aws-chunked with a CRC32 trailer,
      // which s3rver stores framing and all: "6\r\nhello \r\n…x-amz-checksum-crc32:…".
      const client = createS3Client(server.s3Config);
      const key = `${prefix}raw/stream.txt`;
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: key, Body: Readable.from([Buffer.from('hello '), Buffer.from('stream')]), ContentLength: 12 }));
      const object = await raw.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
      expect(await object.Body!.transformToString()).toBe('hello stream');
      client.destroy();
    });
  });

  describe('failures', () => {
    it('says which bucket is missing and which variables to correct, for every operation', async () => {
      const missing = createS3Driver({ ...server.s3Config, bucket: 'no-such-bucket' }, { publicBaseUrl: 'https://cdn.example.com' });
      const operations: [string, () => unknown][] = [
        ['put', () => missing.put('a.jpg', Buffer.from('x'), JPEG)],
        ['put (stream)', () => missing.put('a.jpg', Readable.from([Buffer.from('x')]), JPEG)],
        ['get', () => missing.get('a.jpg')],
        ['stat', () => missing.stat('a.jpg')],
        ['delete', () => missing.delete('a.jpg')],
        ['copy', () => missing.copy('a.jpg', 'b.jpg')],
        ['list', () => collect(missing.list(''))],
      ];
      for (const [operation, run] of operations) {
        const err = await failureOf(run);
        expect(err, operation).toBeInstanceOf(S3StorageError);
        expect((err as Error).message, operation).toContain('bucket "no-such-bucket"');
        expect((err as Error).message, operation).toContain(server.endpoint);
        expect((err as Error).message, operation).toMatch(/S3_BUCKET/);
      }
    });

    it('names the credential variables when the store refuses the keys', async () => {
      const wrong = createS3Driver({ ...server.s3Config, accessKeyId: 'WRONG', secretAccessKey: 'WRONG' }, { publicBaseUrl: 'https://cdn.example.com' });
      const err = await failureOf(() => wrong.put('a.jpg', Buffer.from('x'), JPEG));
      expect(err).toBeInstanceOf(S3StorageError);
      expect((err as Error).message).toMatch(/InvalidAccessKeyId.*S3_ACCESS_KEY_ID \/ S3_SECRET_ACCESS_KEY/);
    });

    it('still answers StorageObjectNotFoundError (not a bucket error) for a missing key of an existing bucket', async () => {
      expect(await failureOf(() => driver.get('none.jpg'))).toBeInstanceOf(StorageObjectNotFoundError);
    });
  });
});

describe('createStorageDriver with STORAGE_DRIVER=s3', () => {
  it('makes the s3 driver from S3_* and PUBLIC_BASE_URL, storing into S3_BUCKET', async () => {
    const config = loadConfig({ app: 'image-download-worker', env: { ...server.env, PUBLIC_BASE_URL: 'https://cdn.example.com/img/' } });
    const driver = createStorageDriver(config.storage);
    expect(driver.name).toBe('s3');
    const key = `config-${randomBytes(3).toString('hex')}/a/b.jpg`;
    await driver.put(key, Buffer.from('via config'), JPEG);
    const object = await raw.send(new GetObjectCommand({ Bucket: server.bucket, Key: key }));
    expect(await object.Body!.transformToString()).toBe('via config');
    expect(driver.publicUrl(key)).toBe(`https://cdn.example.com/img/${key}`);
  });
});
