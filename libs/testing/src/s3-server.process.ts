// The S3-compatible server of the tests, as its own process (started by s3-server.ts): s3rver
// (a filesystem-backed S3 written in JavaScript, from the npm registry; no MinIO, moto or
// s3proxy is packaged for this machine and docker does not run), patched where it departs from
// S3 in ways our driver's tests would see:
//
// - ListObjectsV2 pages: s3rver lists in readdir order (not key order) and cuts pages there, so a
//   continuation skips keys; and its continuation token is DES-encrypted, which OpenSSL 3 refuses
//   (a 500 on every truncated page) unless the process runs with --openssl-legacy-provider —
//   why this is a separate process rather than a server inside the test's own.
// - PUT and copy write the object file in place, so a reader sees half an object and concurrent
//   writers interleave bytes; S3 makes an object appear whole or not at all. Here: temp file,
//   then rename, with the object and its metadata replaced together under a per-key lock.
// - AbortMultipartUpload answers 405; here it drops the upload's parts, as S3 does.
// - ListMultipartUploads and ListParts are missing from s3rver (it refuses both); here they list the uploads
//   (in key, then upload id order, paged by markers) and their parts, as S3 does. An upload's
//   Initiated is the mtime of the file s3rver keeps its key in; a part's LastModified, its file's.
//
// Left as s3rver has it: no request checksums (x-amz-checksum-*, aws-chunked bodies are stored
// undecoded — see the s3 driver's client settings), x-amz-copy-source decoded with decodeURI
// (keys with reserved characters cannot be copied), no conditional copy.
//
// Usage: node --openssl-legacy-provider --import tsx s3-server.process.ts <directory> <bucket>
// Prints {"port":N} once listening; stops on SIGTERM or when its stdin closes (parent gone).
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import S3rver, { type FilesystemStore, type S3rverContext, type S3rverListOptions, type S3rverObject } from 's3rver';
import S3Object from 's3rver/lib/models/object';

const OBJECT_SUFFIX = '._S3rver_object';

/** Every object key under `prefix`, in key order (what S3 lists), without reading any metadata. */
function keysUnder(bucketPath: string, prefix: string): string[] {
  const keys: string[] = [];
  const walk = (dir: string, keyPrefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        const folder = `${keyPrefix}${entry.name}/`;
        // Only folders that can hold keys with this prefix.
        if (folder.startsWith(prefix) || prefix.startsWith(folder)) walk(path.join(dir, entry.name), folder);
      } else if (entry.name.endsWith(OBJECT_SUFFIX)) {
        const key = keyPrefix + entry.name.slice(0, -OBJECT_SUFFIX.length);
        if (key.startsWith(prefix)) keys.push(key);
      }
    }
  };
  walk(bucketPath, '');
  return keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function patchStore(store: FilesystemStore): void {
  const listUnsorted = store.listObjects.bind(store);
  store.listObjects = async (bucket: string, options: S3rverListOptions) => {
    if (options.delimiter) return listUnsorted(bucket, options); // not used by 1688sync
    const startAfter = options.startAfter ?? '';
    const after = keysUnder(store.getBucketPath(bucket), options.prefix ?? '').filter((key) => key > startAfter);
    const page = after.slice(0, options.maxKeys ?? 1000);
    const objects: S3rverObject[] = [];
    for (const key of page) {
      try {
        objects.push(new S3Object(bucket, key, null, await store.getMetadata(bucket, key)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // deleted meanwhile
      }
    }
    // The token of the next page is made by the controller from the last key of this one.
    return { objects, commonPrefixes: [], isTruncated: after.length > page.length };
  };

  // One replacement of an object (bytes and metadata) at a time per key.
  const locks = new Map<string, Promise<unknown>>();
  const underLock = async <T>(objectPath: string, replace: () => Promise<T>): Promise<T> => {
    const previous = locks.get(objectPath) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(replace);
    locks.set(objectPath, current);
    try {
      return await current;
    } finally {
      if (locks.get(objectPath) === current) locks.delete(objectPath);
    }
  };
  const tempBeside = (objectPath: string) => `${objectPath}.${randomBytes(8).toString('hex')}.tmp`; // not listed: no object suffix

  store.putObject = async (object: S3rverObject) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(path.dirname(objectPath), { recursive: true });
    const temp = tempBeside(objectPath);
    const md5 = createHash('md5');
    let size = 0;
    try {
      const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content!;
      const count = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          md5.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      await pipeline(content, count, createWriteStream(temp));
      const digest = md5.digest('hex');
      await underLock(objectPath, async () => {
        await rename(temp, objectPath);
        await store.putMetadata(object.bucket, object.key, object.metadata, digest);
      });
      return { size, md5: digest };
    } finally {
      await rm(temp, { force: true });
    }
  };

  const copyInPlace = store.copyObject.bind(store);
  store.copyObject = async (srcBucket, srcKey, destBucket, destKey, replacementMetadata) => {
    const source = store.getResourcePath(srcBucket, srcKey, 'object');
    const target = store.getResourcePath(destBucket, destKey, 'object');
    if (source === target) return copyInPlace(srcBucket, srcKey, destBucket, destKey, replacementMetadata); // metadata only
    await mkdir(path.dirname(target), { recursive: true });
    const temp = tempBeside(target);
    try {
      await copyFile(source, temp);
      const metadata = replacementMetadata ?? (await store.getMetadata(srcBucket, srcKey));
      await underLock(target, async () => {
        await rename(temp, target);
        await rm(`${target}.md5`, { force: true }); // s3rver recomputes the ETag on the next read
        await store.putMetadata(destBucket, destKey, metadata);
      });
      return store.getMetadata(destBucket, destKey);
    } finally {
      await rm(temp, { force: true });
    }
  };
}

/** DELETE /<bucket>/<key>?uploadId=…: drop the parts, 204 (S3 answers 404 NoSuchUpload for an unknown id; so do we). */
function abortMultipartUpload(server: S3rver) {
  return async (ctx: S3rverContext, next: () => Promise<void>) => {
    const uploadId = ctx.query.uploadId;
    if (ctx.method !== 'DELETE' || uploadId === undefined || !/^[0-9a-f]+$/.test(uploadId)) return next();
    const bucket = decodeURIComponent(ctx.path.split('/')[1] ?? '');
    const uploadDir = path.join(server.store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const known = readdirSync(path.dirname(uploadDir), { withFileTypes: true }).some((e) => e.name === uploadId);
    if (!known) {
      ctx.status = 404;
      ctx.body = { Error: { Code: 'NoSuchUpload', Message: 'The specified upload does not exist.', UploadId: uploadId } };
      return;
    }
    await rm(uploadDir, { recursive: true, force: true });
    ctx.status = 204;
  };
}

const OWNER = { ID: 'S3RVER', DisplayName: 'S3rver' };

/** The multipart uploads of a bucket still open, in the order S3 lists them (key, then upload id). */
function openUploads(server: S3rver, bucket: string): { key: string; uploadId: string; initiated: Date }[] {
  const uploadsDir = server.store.getResourcePath(bucket, undefined, 'uploads');
  const uploads = readdirSync(uploadsDir, { withFileTypes: true }).flatMap((entry) => {
    if (!entry.isDirectory()) return [];
    const keyFile = path.join(uploadsDir, entry.name, 'key');
    try {
      return [{ key: readFileSync(keyFile, 'utf8'), uploadId: entry.name, initiated: statSync(keyFile).mtime }];
    } catch {
      return []; // completed or aborted while we looked
    }
  });
  return uploads.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) || (a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0));
}

/** GET /<bucket>?uploads: ListMultipartUploads (prefix, key-marker, upload-id-marker, max-uploads). */
function listMultipartUploads(server: S3rver) {
  return async (ctx: S3rverContext, next: () => Promise<void>) => {
    const segments = ctx.path.split('/').filter(Boolean);
    if (ctx.method !== 'GET' || ctx.query.uploads === undefined || segments.length !== 1) return next();
    const bucket = decodeURIComponent(segments[0]);
    const prefix = ctx.query.prefix ?? '';
    const keyMarker = ctx.query['key-marker'] ?? '';
    const uploadIdMarker = ctx.query['upload-id-marker'];
    const maxUploads = Math.min(Number(ctx.query['max-uploads'] ?? 1000) || 1000, 1000);
    // After the markers: later keys, or (with an upload id marker) later uploads of the marker's key.
    const after = openUploads(server, bucket).filter(
      (u) => u.key.startsWith(prefix) && (u.key > keyMarker || (uploadIdMarker !== undefined && u.key === keyMarker && u.uploadId > uploadIdMarker)),
    );
    const page = after.slice(0, maxUploads);
    const truncated = after.length > page.length;
    ctx.body = {
      ListMultipartUploadsResult: {
        Bucket: bucket,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker ?? '',
        NextKeyMarker: truncated ? page.at(-1)!.key : '',
        NextUploadIdMarker: truncated ? page.at(-1)!.uploadId : '',
        Prefix: prefix,
        MaxUploads: maxUploads,
        IsTruncated: truncated,
        Upload: page.map((u) => ({ Key: u.key, UploadId: u.uploadId, Initiator: OWNER, Owner: OWNER, StorageClass: 'STANDARD', Initiated: u.initiated.toISOString() })),
      },
    };
  };
}

/** GET /<bucket>/<key>?uploadId=…: ListParts (all parts in one page; 404 NoSuchUpload for an unknown id). */
function listParts(server: S3rver) {
  return async (ctx: S3rverContext, next: () => Promise<void>) => {
    const uploadId = ctx.query.uploadId;
    const segments = ctx.path.split('/').filter(Boolean);
    if (ctx.method !== 'GET' || uploadId === undefined || !/^[0-9a-f]+$/.test(uploadId) || segments.length < 2) return next();
    const bucket = decodeURIComponent(segments[0]);
    const uploadDir = path.join(server.store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    let names: string[];
    try {
      names = readdirSync(uploadDir).filter((name) => /^\d+$/.test(name));
    } catch {
      ctx.status = 404;
      ctx.body = { Error: { Code: 'NoSuchUpload', Message: 'The specified upload does not exist.', UploadId: uploadId } };
      return;
    }
    const parts = names.map(Number).sort((a, b) => a - b).flatMap((n) => {
      try {
        const file = path.join(uploadDir, String(n));
        const stats = statSync(file);
        return [{ PartNumber: n, LastModified: stats.mtime.toISOString(), ETag: JSON.stringify(readFileSync(`${file}.md5`, 'utf8')), Size: stats.size }];
      } catch {
        return []; // still being written
      }
    });
    ctx.body = {
      ListPartsResult: {
        Bucket: bucket,
        Key: decodeURIComponent(segments.slice(1).join('/')),
        UploadId: uploadId,
        Initiator: OWNER,
        Owner: OWNER,
        StorageClass: 'STANDARD',
        MaxParts: 1000,
        IsTruncated: false,
        Part: parts,
      },
    };
  };
}

async function main() {
  const [directory, bucket] = process.argv.slice(2);
  if (!directory || !bucket) throw new Error('usage: s3-server.process.ts <directory> <bucket>');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  patchStore(server.store);
  // After the logger and the XML encoder (indexes 0 and 1), before the router.
  server.middleware.splice(2, 0, abortMultipartUpload(server), listMultipartUploads(server), listParts(server));
  const { port } = await server.run();
  await mkdir(server.store.getResourcePath(bucket, undefined, 'uploads'), { recursive: true });
  process.stdout.write(`${JSON.stringify({ port })}\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write(`s3 test server: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
