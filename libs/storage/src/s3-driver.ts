// The S3 StorageDriver (STORAGE_DRIVER=s3): one object per key in S3_BUCKET, on AWS S3 or any
// S3-compatible store (MinIO, Ceph, OSS, R2, …), served to users through PUBLIC_BASE_URL (a CDN
// in front of the bucket). Also usable on its own, with a key prefix, for copies of backups.
//
// - Atomic puts: a PUT and a completed multipart upload each replace an object whole. A body of
//   up to one part is sent in one PUT; a larger one in parts (lib-storage's Upload), and a failed
//   multipart upload is aborted, so no half object ever appears under a key.
// - SHA-256: S3's ETag is an MD5 for a plain PUT and an MD5 of part MD5s for a multipart one, so
//   our own SHA-256 travels in the object's metadata (x-amz-meta-sha256). It is known before the
//   upload starts for a Buffer (or when the caller passes it); a stream longer than one part is
//   hashed while it uploads and the hash is written after it completes (a metadata-only copy of
//   the object onto itself, conditional on it being still ours). stat() returns it; list() does
//   not: ListObjectsV2 carries no user metadata, and a HEAD per listed object would cost more
//   than every caller of list() needs.
// - Cache-Control: derived images (thumbnail/, compressed/) are immutable under their key, as
//   the fs driver's /files route serves them; other keys get the caller's cacheControl.
// - Checksums: the client is built with requestChecksumCalculation and responseChecksumValidation
//   WHEN_REQUIRED (see createS3Client).
// - Unfinished writes: S3 has no temp objects, but a writer killed during a multipart upload
//   leaves the upload open, its parts held (and billed) and never listed as an object. They are
//   listed with ListMultipartUploads and removed with AbortMultipartUpload, after ListParts has
//   shown no part written since the time the caller gives (the consistency check's grace).
import { AppError } from '@1688sync/core';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Config } from '@1688sync/config';
import { IMMUTABLE_CACHE_CONTROL, contentTypeOfKey, isDerivedImageKey, publicUrl } from './keys';
import {
  InvalidStorageKeyError,
  type PutOptions,
  type StorageDriver,
  StorageObjectNotFoundError,
  type StoredObject,
  type UnfinishedWrite,
  type UnfinishedWriteRemoval,
  assertSafeKey,
} from './storage-driver';

export type S3Settings = Config['storage']['s3'];

/** S3's smallest part (all parts but the last); also its largest single-request copy. */
export const MIN_PART_SIZE_BYTES = 5 * 1024 * 1024;
const MAX_COPY_BYTES = 5 * 1024 ** 3;
const DEFAULT_PART_SIZE_BYTES = 8 * 1024 * 1024;
const DEFAULT_UPLOAD_CONCURRENCY = 4;
const DEFAULT_LIST_PAGE_SIZE = 1000;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Attempts of a head-then-copy whose source changed in between. */
const COPY_ATTEMPTS = 3;

export interface S3DriverOptions {
  /** PUBLIC_BASE_URL: the URL of the bucket's root (its CDN), to which keys are appended. */
  publicBaseUrl: string;
  /**
   * Prepended to every key inside the bucket (e.g. 'backups/'); list() and the keys it returns
   * leave it out. Default none: the key is the object's name.
   */
  keyPrefix?: string;
  /** Bytes per multipart part; a larger body is uploaded in parts. At least 5 MiB (S3's rule). Default 8 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded at once by one put; memory per put is about partSize × (this + 1). Default 4. */
  uploadConcurrency?: number;
  /** Keys per ListObjectsV2 request, 1–1000. Default 1000. */
  listPageSize?: number;
  /** A client to use instead of one built from the settings. */
  client?: S3Client;
}

/**
 * The SDK client for S3_* settings.
 *
 * Checksums: since early 2025 the SDK defaults to requestChecksumCalculation /
 * responseChecksumValidation WHEN_SUPPORTED — a CRC32 on every upload, and for a body of unknown
 * length an aws-chunked body with the CRC in a trailer. Stores that do not decode aws-chunked
 * keep the chunk framing as the object's bytes (s3rver does, silently; older MinIO, Ceph and
 * several vendors reject the headers instead). WHEN_REQUIRED sends checksums only for the
 * operations that need one. Nothing is lost: the driver sends every body as a Buffer (parts
 * included), so SigV4 signs its SHA-256 (x-amz-content-sha256) and the store checks it, and our
 * own SHA-256 of the whole object is kept in its metadata.
 */
export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    // Both or neither (config checks it); neither: the SDK's default chain (env, profile, IAM role).
    credentials: settings.accessKeyId && settings.secretAccessKey ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } : undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A store that stops answering must not hold a job forever (the SDK retries 3 times).
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  });
}

export function createS3Driver(settings: S3Settings, options: S3DriverOptions): StorageDriver {
  return new S3StorageDriver(settings, options);
}

/** A failure of the S3 store, with a message naming what to check (S3_BUCKET, S3_ENDPOINT, credentials). */
export class S3StorageError extends AppError {
  readonly code = 's3_storage_error';
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const statusOf = (err: unknown) => (err as SdkError | undefined)?.$metadata?.httpStatusCode;
const nameOf = (err: unknown) => (err as SdkError | undefined)?.name ?? '';

function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404 || ['NotFound', 'NoSuchKey', 'NoSuchUpload'].includes(nameOf(err));
}

function sha256Of(metadata: Record<string, string> | undefined): string | undefined {
  const value = metadata?.sha256;
  return value && SHA256_HEX.test(value) ? value : undefined;
}

function toBuffer(chunk: unknown): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
}

/** A copy source: bucket/key, each segment of the key URL-encoded (S3 decodes it). */
function copySource(bucket: string, objectKey: string): string {
  return `${bucket}/${objectKey.split('/').map(encodeURIComponent).join('/')}`;
}

class S3StorageDriver implements StorageDriver {
  readonly name = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly where: string;
  private readonly keyPrefix: string;
  private readonly partSize: number;
  private readonly uploadConcurrency: number;
  private readonly listPageSize: number;
  private readonly publicBaseUrl: string;
  /** Set once the bucket is known to exist (a HEAD on a missing bucket looks like a missing object). */
  private bucketChecked: Promise<void> | undefined;

  constructor(settings: S3Settings, options: S3DriverOptions) {
    if (!settings.bucket) throw new S3StorageError('the s3 storage driver needs a bucket: set S3_BUCKET');
    this.bucket = settings.bucket;
    this.where = `bucket "${settings.bucket}" at ${settings.endpoint ?? `AWS S3 (${settings.region})`}`;
    this.keyPrefix = options.keyPrefix ?? '';
    if (this.keyPrefix) assertSafeKey(this.keyPrefix.replace(/\/$/, ''));
    this.partSize = options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES;
    if (!Number.isInteger(this.partSize) || this.partSize < MIN_PART_SIZE_BYTES) throw new RangeError(`partSizeBytes must be at least ${MIN_PART_SIZE_BYTES} (5 MiB, S3's smallest part)`);
    this.uploadConcurrency = options.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY;
    this.listPageSize = options.listPageSize ?? DEFAULT_LIST_PAGE_SIZE;
    if (!Number.isInteger(this.listPageSize) || this.listPageSize < 1 || this.listPageSize > 1000) throw new RangeError('listPageSize must be a whole number from 1 to 1000');
    this.publicBaseUrl = options.publicBaseUrl;
    this.client = options.client ?? createS3Client(settings);
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions): Promise<StoredObject> {
    let objectKey: string;
    try {
      objectKey = this.objectKey(key);
      await this.ensureBucket();
    } catch (err) {
      // Refused before reading a byte: let the caller's stream (a socket, a file) go.
      if (!Buffer.isBuffer(body)) body.destroy();
      throw err;
    }
    if (Buffer.isBuffer(body)) {
      const sha256 = options.sha256 ?? createHash('sha256').update(body).digest('hex');
      if (body.length <= this.partSize) await this.putWhole(key, objectKey, body, options, sha256);
      else await this.putInParts(key, objectKey, body, options, sha256);
      return this.stored(key, body.length, sha256, options);
    }
    try {
      return await this.putStream(key, objectKey, body, options);
    } catch (err) {
      body.destroy();
      throw err;
    }
  }

  async get(key: string): Promise<Readable> {
    const objectKey = this.objectKey(key);
    await this.ensureBucket();
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return (response.Body as Readable | undefined) ?? Readable.from([]);
    } catch (err) {
      if (isNotFound(err)) throw new StorageObjectNotFoundError(key);
      throw this.explain(err, 'get', key);
    }
  }

  async stat(key: string): Promise<StoredObject | null> {
    const head = await this.head(key, this.objectKey(key));
    if (!head) return null;
    return {
      key,
      size: head.ContentLength ?? 0,
      modifiedAt: head.LastModified ?? new Date(0),
      sha256: sha256Of(head.Metadata),
      contentType: head.ContentType ?? contentTypeOfKey(key),
    };
  }

  async copy(fromKey: string, toKey: string, options: Partial<PutOptions> = {}): Promise<StoredObject> {
    const from = this.objectKey(fromKey);
    const to = this.objectKey(toKey);
    for (let attempt = 1; ; attempt++) {
      const source = await this.head(fromKey, from);
      if (!source) throw new StorageObjectNotFoundError(fromKey);
      const size = source.ContentLength ?? 0;
      if (size > MAX_COPY_BYTES) throw new S3StorageError(`cannot copy ${fromKey}: ${size} bytes is more than one CopyObject request takes (5 GiB)`);
      const sha256 = sha256Of(source.Metadata) ?? options.sha256;
      const contentType = options.contentType ?? source.ContentType ?? contentTypeOfKey(toKey);
      try {
        // REPLACE, not COPY: the destination's Cache-Control follows its own key; our metadata
        // (the SHA-256) is carried over by hand. If-Match: the bytes copied are the ones whose
        // hash we just read.
        const result = await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: to,
            CopySource: copySource(this.bucket, from),
            CopySourceIfMatch: source.ETag,
            MetadataDirective: 'REPLACE',
            ContentType: contentType,
            CacheControl: this.cacheControl(toKey, options.cacheControl ?? source.CacheControl),
            Metadata: sha256 ? { sha256 } : undefined,
          }),
        );
        return { key: toKey, size, modifiedAt: result.CopyObjectResult?.LastModified ?? new Date(), sha256, contentType };
      } catch (err) {
        if (isNotFound(err)) throw new StorageObjectNotFoundError(fromKey); // deleted since the HEAD
        if (statusOf(err) === 412 && attempt < COPY_ATTEMPTS) continue; // rewritten since the HEAD
        throw this.explain(err, 'copy', `${fromKey} to ${toKey}`);
      }
    }
  }

  async delete(key: string): Promise<boolean> {
    const objectKey = this.objectKey(key);
    // DELETE answers 204 whether or not the object was there: ask first. Two concurrent deletes
    // of one key may both answer true.
    if (!(await this.head(key, objectKey))) return false;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return true;
    } catch (err) {
      throw this.explain(err, 'delete', key);
    }
  }

  /**
   * Every object under `prefix`, one ListObjectsV2 page (listPageSize keys) in memory at a
   * time, in key order. Each has key, size, modifiedAt (S3's Last-Modified) and the content type
   * of its extension — no sha256 (see the top of this file). Objects whose names are not valid
   * keys (folder markers "a/", "a//b", written by other tools) are skipped: no other method could
   * take them.
   */
  async *list(prefix: string): AsyncGenerator<StoredObject> {
    this.assertPrefix(prefix);
    await this.ensureBucket();
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keyPrefix + prefix, MaxKeys: this.listPageSize, ContinuationToken: continuationToken }),
        );
      } catch (err) {
        throw this.explain(err, 'list', prefix || '(all)');
      }
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(this.keyPrefix.length);
        if (!key || !isSafeKey(key)) continue;
        yield { key, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0), contentType: contentTypeOfKey(key) };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  /**
   * Every multipart upload under `prefix` that is neither completed nor aborted, one
   * ListMultipartUploads page at a time, in key order. lastWrittenAt is when it began: the
   * listing does not tell when its last part came (removeUnfinishedWrite asks).
   */
  async *listUnfinishedWrites(prefix: string): AsyncGenerator<UnfinishedWrite> {
    this.assertPrefix(prefix);
    await this.ensureBucket();
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.keyPrefix + prefix, MaxUploads: this.listPageSize, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
      } catch (err) {
        throw this.explain(err, 'list the multipart uploads of', prefix || '(all)');
      }
      for (const upload of page.Uploads ?? []) {
        const key = upload.Key?.slice(this.keyPrefix.length);
        if (!key || !upload.UploadId || !isSafeKey(key)) continue;
        yield { key, id: upload.UploadId, lastWrittenAt: upload.Initiated ?? new Date(0) };
      }
      if (!page.IsTruncated || (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker)) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async removeUnfinishedWrite(write: UnfinishedWrite, { quietSince }: { quietSince: Date }): Promise<UnfinishedWriteRemoval> {
    const objectKey = this.objectKey(write.key);
    await this.ensureBucket();
    try {
      // A live writer uploads a part every few seconds: its newest part (or, with none yet, the
      // upload's start) is its last sign of life.
      let lastWrittenAt = write.lastWrittenAt;
      let partMarker: string | undefined;
      for (;;) {
        const page = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: objectKey, UploadId: write.id, PartNumberMarker: partMarker }));
        for (const part of page.Parts ?? []) if (part.LastModified && part.LastModified > lastWrittenAt) lastWrittenAt = part.LastModified;
        if (!page.IsTruncated || !page.NextPartNumberMarker || page.NextPartNumberMarker === partMarker) break;
        partMarker = page.NextPartNumberMarker;
      }
      if (lastWrittenAt > quietSince) return 'still-written';
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: write.id }));
      return 'removed';
    } catch (err) {
      if (isNotFound(err)) return 'gone'; // completed or aborted meanwhile
      throw this.explain(err, `abort the upload ${write.id} of`, write.key);
    }
  }

  publicUrl(key: string): string {
    return publicUrl(this.publicBaseUrl, this.objectKey(key));
  }

  /** A listing prefix: any string prefix of a valid key. */
  private assertPrefix(prefix: string): void {
    if (typeof prefix !== 'string' || /[\\\u0000-\u001f\u007f]/.test(prefix)) {
      throw new InvalidStorageKeyError(String(prefix), 'a prefix must not contain backslashes or control characters');
    }
    const folder = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    if (folder) assertSafeKey(folder.slice(0, -1));
  }

  private objectKey(key: string): string {
    return this.keyPrefix + assertSafeKey(key);
  }

  private cacheControl(key: string, requested: string | undefined): string | undefined {
    return isDerivedImageKey(key) ? IMMUTABLE_CACHE_CONTROL : requested;
  }

  private stored(key: string, size: number, sha256: string, options: PutOptions): StoredObject {
    // PUT and CompleteMultipartUpload do not return Last-Modified; this machine's clock is close.
    return { key, size, modifiedAt: new Date(), sha256, contentType: options.contentType };
  }

  private async putWhole(key: string, objectKey: string, body: Buffer, options: PutOptions, sha256: string): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          Body: body,
          ContentLength: body.length,
          ContentType: options.contentType,
          CacheControl: this.cacheControl(key, options.cacheControl),
          Metadata: { sha256 },
        }),
      );
    } catch (err) {
      throw this.explain(err, 'put', key);
    }
  }

  /** Multipart: parts of partSize, uploadConcurrency at a time; aborted (parts dropped) on any failure. */
  private async putInParts(key: string, objectKey: string, body: Buffer | Readable, options: PutOptions, sha256: string | undefined): Promise<void> {
    const upload = new Upload({
      client: this.client,
      partSize: this.partSize,
      queueSize: this.uploadConcurrency,
      // We abort ourselves: lib-storage would replace the upload's error with the abort's.
      leavePartsOnError: true,
      params: {
        Bucket: this.bucket,
        Key: objectKey,
        Body: body,
        ContentType: options.contentType,
        CacheControl: this.cacheControl(key, options.cacheControl),
        Metadata: sha256 ? { sha256 } : undefined,
      },
    });
    try {
      await upload.done();
    } catch (err) {
      const failure = this.explain(err, 'put', key);
      if (upload.uploadId) {
        try {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: upload.uploadId }));
        } catch (abortError) {
          failure.message +=
            `; its multipart upload ${upload.uploadId} could not be aborted either (${(abortError as Error).message}): ` +
            'the parts stay billed until a lifecycle rule (AbortIncompleteMultipartUpload) removes them';
        }
      }
      throw failure;
    }
  }

  /**
   * A stream: its first part is read (and hashed) before anything is sent. When the stream ends
   * within it, one PUT with the hash; otherwise the rest is hashed while it uploads in parts, and
   * the hash is recorded on the completed object.
   */
  private async putStream(key: string, objectKey: string, body: Readable, options: PutOptions): Promise<StoredObject> {
    const hash = createHash('sha256');
    let size = 0;
    const chunks = body[Symbol.asyncIterator]();
    const read = async (): Promise<Buffer | null> => {
      const next = await chunks.next();
      if (next.done) return null;
      const chunk = toBuffer(next.value);
      hash.update(chunk);
      size += chunk.length;
      return chunk;
    };
    const head: Buffer[] = [];
    let ended = false;
    while (!ended && size <= this.partSize) {
      const chunk = await read();
      if (chunk) head.push(chunk);
      else ended = true;
    }
    if (ended) {
      const bytes = Buffer.concat(head, size);
      const sha256 = hash.digest('hex');
      await this.putWhole(key, objectKey, bytes, options, sha256);
      return this.stored(key, size, sha256, options);
    }
    const rest = Readable.from(
      (async function* () {
        yield* head;
        for (let chunk = await read(); chunk; chunk = await read()) yield chunk;
      })(),
    );
    await this.putInParts(key, objectKey, rest, options, options.sha256);
    const sha256 = hash.digest('hex');
    // Past 5 GiB one CopyObject cannot rewrite the metadata: such an object keeps none (stat()
    // then has no sha256), the caller still gets it here.
    if (sha256 !== options.sha256 && size <= MAX_COPY_BYTES) await this.recordSha256(key, objectKey, sha256, options);
    return this.stored(key, size, sha256, options);
  }

  /**
   * Writes the SHA-256 into a completed object's metadata: a copy onto itself with new metadata
   * (the bytes are not rewritten by S3 for a same-key metadata change). If the object was
   * overwritten meanwhile, the other writer's object and metadata stand.
   */
  private async recordSha256(key: string, objectKey: string, sha256: string, options: PutOptions): Promise<void> {
    const head = await this.head(key, objectKey);
    if (!head) return; // deleted meanwhile
    try {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: objectKey,
          CopySource: copySource(this.bucket, objectKey),
          CopySourceIfMatch: head.ETag,
          MetadataDirective: 'REPLACE',
          ContentType: options.contentType,
          CacheControl: this.cacheControl(key, options.cacheControl),
          Metadata: { ...head.Metadata, sha256 },
        }),
      );
    } catch (err) {
      if (isNotFound(err) || statusOf(err) === 412) return;
      throw this.explain(err, 'record the SHA-256 of', key);
    }
  }

  private async head(key: string, objectKey: string): Promise<HeadObjectCommandOutput | null> {
    await this.ensureBucket();
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.explain(err, 'stat', key);
    }
  }

  /**
   * Once per driver: does the bucket exist? A HEAD of an object in a missing bucket answers 404
   * like a missing object, so without this a wrong S3_BUCKET would look like an empty store. A 403
   * (a policy without s3:ListBucket on the bucket itself) tells nothing: carry on.
   */
  private ensureBucket(): Promise<void> {
    this.bucketChecked ??= this.client.send(new HeadBucketCommand({ Bucket: this.bucket })).then(
      () => undefined,
      (err: unknown) => {
        if (statusOf(err) === 403) return;
        this.bucketChecked = undefined; // ask again next time: it may be created meanwhile
        if (statusOf(err) === 404) {
          throw new S3StorageError(`the ${this.where} does not exist: create it, or correct S3_BUCKET / S3_ENDPOINT / S3_REGION`, { cause: err });
        }
        throw this.explain(err, 'check', '(the bucket)');
      },
    );
    return this.bucketChecked;
  }

  /** The SDK's error in a sentence an operator can act on; the original is the cause. */
  private explain(err: unknown, operation: string, key: string): S3StorageError {
    const name = nameOf(err);
    const status = statusOf(err);
    const detail = `${name || 'Error'}${status ? ` (HTTP ${status})` : ''}: ${(err as Error)?.message ?? String(err)}`;
    let hint = '';
    if (name === 'NoSuchBucket') hint = ' — the bucket does not exist: create it, or correct S3_BUCKET / S3_ENDPOINT';
    else if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden'].includes(name) || status === 403) {
      hint = ' — check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY (or the credentials the SDK found) and the bucket policy';
    } else if (status === undefined && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|socket|timed? ?out/i.test(detail)) {
      hint = ' — is S3_ENDPOINT right and the store up?';
    }
    return new S3StorageError(`s3 ${operation} ${key} in the ${this.where} failed: ${detail}${hint}`, { cause: err });
  }
}

function isSafeKey(key: string): boolean {
  try {
    assertSafeKey(key);
    return true;
  } catch {
    return false;
  }
}
