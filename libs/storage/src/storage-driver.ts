// The StorageDriver every storage backend implements (fs now, s3 in its own issue). One driver
// test suite (storage-driver.contract.ts) runs unchanged against each.
import { AppError } from '@1688sync/core';
import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  size: number;
  modifiedAt: Date;
  /** SHA-256 (hex) of the content, where the driver knows it (s3 keeps our own in metadata). */
  sha256?: string;
  contentType?: string;
}

export interface PutOptions {
  contentType: string;
  cacheControl?: string;
  /** SHA-256 (hex) the caller computed; drivers store it where they can. */
  sha256?: string;
}

/**
 * What a writer that never finished left behind: the fs driver's temp file beside the key, or an
 * S3 multipart upload neither completed nor aborted. Never an object (get, stat and list do not
 * see it), but it holds space (S3 bills the parts). A write still in progress looks the same,
 * except that it keeps being written to.
 */
export interface UnfinishedWrite {
  /** The key it was writing. */
  key: string;
  /** Which write of that key (fs: the temp file's name; s3: the upload id). */
  id: string;
  /** fs: the temp file's mtime (each chunk written moves it); s3: when the upload began. */
  lastWrittenAt: Date;
  /** Bytes it holds, where the listing tells (fs); s3 lists uploads without their parts. */
  size?: number;
}

/** What removeUnfinishedWrite did: removed it, found it gone, or found it written to since `quietSince` (kept). */
export type UnfinishedWriteRemoval = 'removed' | 'gone' | 'still-written';

export interface StorageDriver {
  readonly name: 'fs' | 's3';
  /** Writes atomically: the object appears whole under `key` or not at all (temp name + rename). */
  put(key: string, body: Buffer | Readable, options: PutOptions): Promise<StoredObject>;
  /** The object's bytes as a stream; throws StorageObjectNotFoundError when absent. */
  get(key: string): Promise<Readable>;
  /** Size, time and (where known) checksum; null when absent. */
  stat(key: string): Promise<StoredObject | null>;
  /** Atomic copy under a new key (URL dedupe: each product keeps its own file). */
  copy(fromKey: string, toKey: string, options?: Partial<PutOptions>): Promise<StoredObject>;
  /** Deletes; true when something was deleted. */
  delete(key: string): Promise<boolean>;
  /** Every object whose key starts with `prefix`, streamed page by page (never all in memory). */
  list(prefix: string): AsyncIterable<StoredObject>;
  /** The public URL of a key (PUBLIC_BASE_URL + key). */
  publicUrl(key: string): string;
  /**
   * Every unfinished write of a key starting with `prefix`, streamed like list(). A write in
   * progress is listed too: the caller judges by lastWrittenAt.
   */
  listUnfinishedWrites(prefix: string): AsyncIterable<UnfinishedWrite>;
  /**
   * Removes an unfinished write (fs: deletes its temp file; s3: aborts its upload), unless it is
   * gone or has been written to after `quietSince` — looked at again right before removing it,
   * so a writer that is still alive keeps its write.
   */
  removeUnfinishedWrite(write: UnfinishedWrite, options: { quietSince: Date }): Promise<UnfinishedWriteRemoval>;
}

export class StorageObjectNotFoundError extends AppError {
  readonly code = 'storage_not_found';
  constructor(readonly key: string) {
    super(`no stored object ${key}`, { httpStatus: 404 });
  }
}

/** A key that could escape the storage root or is not a key at all ('..', absolute, NUL, …). */
export class InvalidStorageKeyError extends AppError {
  readonly code = 'invalid_storage_key';
  constructor(readonly key: string, reason: string) {
    super(`invalid storage key ${JSON.stringify(key)}: ${reason}`, { permanent: true });
  }
}

/** Checks a key: relative, '/'-separated, no empty, '.' or '..' segments, no backslash or control characters. */
export function assertSafeKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) throw new InvalidStorageKeyError(String(key), 'must be 1–1024 characters');
  if (key.startsWith('/')) throw new InvalidStorageKeyError(key, 'must be relative');
  if (/[\\\u0000-\u001f\u007f]/.test(key)) throw new InvalidStorageKeyError(key, 'must not contain backslashes or control characters');
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') throw new InvalidStorageKeyError(key, 'must not contain empty, "." or ".." segments');
  }
  return key;
}
