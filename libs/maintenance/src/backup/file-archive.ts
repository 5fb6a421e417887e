// files.tar.gz: the stored image files as a streamed tar.gz, one entry per storage key (the key is
// the tar path), in the storage listing's ascending key order — the same order as the manifest,
// so every reader below is a merge walk of two sorted streams and nothing is held in memory but
// the few files in flight (each read whole: images are bounded by IMAGE_MAX_BYTES).
//
// Everything goes through the StorageDriver (fs or s3): list, get, put, delete.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createGunzip, createGzip } from 'node:zlib';
import { type StorageDriver, StorageObjectNotFoundError, contentTypeOfKey } from '@1688sync/storage';
import * as tar from 'tar-stream';
import { type ArtifactChecksum, type ManifestFile, type ManifestFilesWriter, Peekable } from './manifest';

/** Image files are already compressed: the fastest level keeps gzip off the critical path. */
const GZIP_LEVEL = zlibConstants.Z_BEST_SPEED;

export const sha256Hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function readAll(stream: Readable | AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `fn` over `source` with up to `concurrency` calls in flight, results in the source's order. */
async function* orderedMap<T, R>(source: AsyncIterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const inFlight: Promise<R>[] = [];
  for await (const item of source) {
    const result = fn(item);
    result.catch(() => undefined); // awaited below, in order; never unhandled meanwhile
    inFlight.push(result);
    if (inFlight.length >= concurrency) yield await inFlight.shift()!;
  }
  while (inFlight.length) yield await inFlight.shift()!;
}

/** Runs tasks with at most `limit` at once; the first failure is thrown by `drain` (and by later `add`s). */
class TaskPool {
  private readonly running = new Set<Promise<void>>();
  private failure: Error | null = null;
  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure) throw this.failure;
    const p: Promise<void> = task().then(
      () => void this.running.delete(p),
      (err: Error) => {
        this.failure ??= err;
        this.running.delete(p);
      },
    );
    this.running.add(p);
  }

  async drain(): Promise<void> {
    while (this.running.size) await Promise.race(this.running);
    if (this.failure) throw this.failure;
  }
}

function packEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, bytes, (err) => (err ? reject(err) : resolve()));
  });
}

/** A Transform that hashes and counts what passes through. */
function checksumMeter(onBytes?: (bytes: number) => void) {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      onBytes?.(size);
      callback(null, chunk);
    },
  });
  return { stream, result: (): ArtifactChecksum => ({ size, sha256: hash.digest('hex') }) };
}

export interface ArchiveStoredFilesOptions {
  storage: StorageDriver;
  /** Key prefix of what is backed up (products/). */
  prefix: string;
  archivePath: string;
  /** Receives every listed file (archived here or in the base). */
  manifest: ManifestFilesWriter;
  backupId: string;
  /** For an incremental backup: the full backup's id and its manifest's files. */
  base: { id: string; files: AsyncIterable<ManifestFile> } | null;
  /** Files read from storage at once. */
  concurrency?: number;
  onProgress?: (listed: number) => void;
  /** A file listed but gone before it was read (purged meanwhile): left out. */
  onVanished?: (key: string) => void;
}

export interface ArchivedFiles {
  archive: ArtifactChecksum;
  fileCount: number;
  archivedFileCount: number;
  /** Files left to the base archive: unchanged since the base (size and time, or content). */
  fromBase: number;
}

type Planned = { file: { key: string; size: number; modifiedAt: Date }; base: ManifestFile | null };
type Decided = { entry: ManifestFile; bytes: Buffer | null } | null;

/**
 * Writes files.tar.gz of every object under `prefix`, and its manifest lines. With a base, a file
 * whose size and modification time match the base manifest's reuses its checksum unread; one whose
 * content turns out to equal the base's is left to the base archive too; the rest is archived here.
 */
export async function archiveStoredFiles(opts: ArchiveStoredFilesOptions): Promise<ArchivedFiles> {
  const { storage, prefix, archivePath, manifest, backupId, base, concurrency = 4, onProgress, onVanished } = opts;
  const pack = tar.pack();
  const meter = checksumMeter();
  const written = pipeline(pack, createGzip({ level: GZIP_LEVEL }), meter.stream, createWriteStream(archivePath, { mode: 0o600 }));
  written.catch(() => undefined); // awaited below
  const baseFiles = base ? Peekable.of(base.files) : null;

  async function* plan(): AsyncGenerator<Planned> {
    let previous: string | null = null;
    for await (const object of storage.list(prefix)) {
      if (previous !== null && !(object.key > previous)) {
        throw new Error(`the storage listed ${object.key} after ${previous}: a backup needs keys in ascending order`);
      }
      previous = object.key;
      let match: ManifestFile | null = null;
      if (baseFiles) {
        while ((await baseFiles.peek()) && (await baseFiles.peek())!.key < object.key) await baseFiles.next();
        const next = await baseFiles.peek();
        if (next?.key === object.key) match = next;
      }
      yield { file: object, base: match };
    }
  }

  const decide = async ({ file, base: match }: Planned): Promise<Decided> => {
    const modifiedAt = file.modifiedAt.toISOString();
    if (match && match.size === file.size && match.modifiedAt === modifiedAt) return { entry: { ...match, modifiedAt }, bytes: null };
    let bytes: Buffer;
    try {
      bytes = await readAll(await storage.get(file.key));
    } catch (err) {
      if (err instanceof StorageObjectNotFoundError) {
        onVanished?.(file.key);
        return null;
      }
      throw err;
    }
    const sha256 = sha256Hex(bytes);
    if (match && match.sha256 === sha256 && match.size === bytes.length) return { entry: { ...match, modifiedAt }, bytes: null };
    return { entry: { key: file.key, size: bytes.length, sha256, modifiedAt, archive: backupId }, bytes };
  };

  let fileCount = 0;
  let archivedFileCount = 0;
  let fromBase = 0;
  try {
    for await (const decided of orderedMap(plan(), concurrency, decide)) {
      if (!decided) continue;
      if (decided.bytes) {
        await packEntry(pack, { name: decided.entry.key, size: decided.bytes.length, mtime: new Date(decided.entry.modifiedAt), mode: 0o644, type: 'file' }, decided.bytes);
        archivedFileCount += 1;
      } else {
        fromBase += 1;
      }
      await manifest.add(decided.entry);
      fileCount += 1;
      onProgress?.(fileCount);
    }
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    throw err;
  } finally {
    await baseFiles?.close();
  }
  return { archive: meter.result(), fileCount, archivedFileCount, fromBase };
}

/** The entries of a tar.gz, each read whole. Throws on a damaged gzip stream or tar structure. */
export async function* archiveEntries(path: string): AsyncGenerator<{ key: string; type: string; bytes: Buffer }> {
  const source = createReadStream(path);
  const gunzip = createGunzip();
  const extract = tar.extract();
  const fail = (err: Error) => extract.destroy(err);
  source.on('error', fail);
  gunzip.on('error', fail);
  source.pipe(gunzip).pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) {
      const bytes = await readAll(entry);
      yield { key: entry.header.name, type: entry.header.type ?? 'file', bytes };
    }
  } finally {
    source.destroy();
    gunzip.destroy();
    extract.destroy();
  }
}

/** The keys of a tar.gz in order (tests, operators' checks). */
export async function archiveKeys(path: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of archiveEntries(path)) keys.push(entry.key);
  return keys;
}

export interface ArchiveCheck {
  /** Entries read. */
  entries: number;
  /** Manifest files found with their size and checksum. */
  matched: number;
  problems: string[];
}

const MAX_PROBLEMS = 20;

/**
 * Reads a whole tar.gz and checks it against the manifest files that say they are in it
 * (`expected`, ascending key order): each is there with its size and SHA-256. With `strict`, an
 * entry the manifest does not list is a problem too (a backup's own archive); without (the base
 * archive of an incremental), entries nobody lists any more are skipped.
 */
export async function checkArchive(path: string, expected: AsyncIterable<ManifestFile>, { strict, label, onEntry }: { strict: boolean; label: string; onEntry?: (entries: number) => void }): Promise<ArchiveCheck> {
  const wanted = Peekable.of(expected);
  const result: ArchiveCheck = { entries: 0, matched: 0, problems: [] };
  const problem = (text: string) => {
    if (result.problems.length < MAX_PROBLEMS) result.problems.push(text);
  };
  try {
    for await (const entry of archiveEntries(path)) {
      result.entries += 1;
      onEntry?.(result.entries);
      let next = await wanted.peek();
      while (next && next.key < entry.key) {
        problem(`${next.key} is missing from ${label}`);
        await wanted.next();
        next = await wanted.peek();
      }
      if (next?.key === entry.key) {
        await wanted.next();
        if (entry.type !== 'file') problem(`${entry.key} in ${label} is not a file`);
        else if (entry.bytes.length !== next.size || sha256Hex(entry.bytes) !== next.sha256) problem(`${entry.key} in ${label} does not match its size or SHA-256 in the manifest`);
        else result.matched += 1;
      } else if (strict) {
        problem(`${entry.key} is in ${label} but not in the manifest`);
      }
    }
    for (let next = await wanted.next(); next; next = await wanted.next()) problem(`${next.key} is missing from ${label}`);
  } catch (err) {
    problem(`${label} cannot be read to the end: ${(err as Error).message}`);
  } finally {
    await wanted.close();
  }
  return result;
}

/**
 * Puts the files of one archive that the manifest assigns to it (`wanted`, ascending key order)
 * into storage, each checked against its SHA-256 again on the way. Returns how many were put.
 */
export async function extractArchiveToStorage(
  path: string,
  wanted: AsyncIterable<ManifestFile>,
  storage: StorageDriver,
  { concurrency = 8, label, onFile }: { concurrency?: number; label: string; onFile?: () => void },
): Promise<number> {
  const files = Peekable.of(wanted);
  const puts = new TaskPool(concurrency);
  let put = 0;
  try {
    for await (const entry of archiveEntries(path)) {
      while ((await files.peek()) && (await files.peek())!.key < entry.key) {
        throw new Error(`${(await files.peek())!.key} is missing from ${label}`);
      }
      const file = await files.peek();
      if (file?.key !== entry.key) continue; // in the base archive, but not part of this backup
      await files.next();
      if (entry.bytes.length !== file.size || sha256Hex(entry.bytes) !== file.sha256) throw new Error(`${entry.key} in ${label} no longer matches the manifest`);
      await puts.add(async () => {
        await storage.put(file.key, entry.bytes, { contentType: contentTypeOfKey(file.key), sha256: file.sha256 });
        put += 1;
        onFile?.();
      });
    }
    const missing = await files.peek();
    if (missing) throw new Error(`${missing.key} is missing from ${label}`);
    await puts.drain();
  } catch (err) {
    await puts.drain().catch(() => undefined);
    throw err;
  } finally {
    await files.close();
  }
  return put;
}
