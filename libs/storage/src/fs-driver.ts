// The local-filesystem StorageDriver (STORAGE_DRIVER=fs): one file per key at <root>/<key>.
// Writes are atomic (temp file in the same directory, fdatasync, rename), keys are checked before any
// path is built, and nothing reached through a symlink is ever read, written or deleted: the
// driver never makes symlinks, so one in the tree was put there by someone else. A writer killed
// between its temp file and the rename leaves the temp file: list() never shows it as an object,
// listUnfinishedWrites() does, so the consistency check can report and remove it.
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { contentTypeOfKey, publicUrl } from './keys';
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

export interface FsDriverOptions {
  /** The storage root (STORAGE_DIR); created on the first write. */
  root: string;
  /** PUBLIC_BASE_URL. */
  publicBaseUrl: string;
}

export function createFsDriver(options: FsDriverOptions): StorageDriver {
  return new FsStorageDriver(options);
}

/** `.<basename>.<16 hex>.tmp`: hidden, unique per write, and recognisable so list() skips it. */
const TEMP_FILE = /^\.(.*)\.[0-9a-f]{16}\.tmp$/;
/** Names that cannot be a key segment (written by something else); list() skips them. */
const UNSAFE_NAME = /[\\\u0000-\u001f\u007f]/;
/** A concurrent delete may remove an empty directory between our mkdir and our open. */
const MAX_WRITE_ATTEMPTS = 5;

/** The name of a put's temp file beside the file of `basename` (exported for the specs: a killed writer's leftover). */
export function tempFileName(basename: string): string {
  return `.${basename.slice(0, 100)}.${randomBytes(8).toString('hex')}.tmp`;
}

/** The basename a temp file was written for (its first 100 characters), or null for any other name. */
function writtenName(name: string): string | null {
  return TEMP_FILE.exec(name)?.[1] ?? null;
}

/** A file the walk found: an object, or the temp file of an unfinished write (then `key` is the key it was writing). */
interface WalkedFile {
  key: string;
  name: string;
  stats: Stats;
}

/** Writes a stream into an open file (which stays open for fsync), showing each chunk to `observe` first. */
function fileSink(handle: FileHandle, observe: (bytes: Buffer) => void): Writable {
  const writeFully = async (bytes: Buffer) => {
    for (let offset = 0; offset < bytes.length; ) offset += (await handle.write(bytes, offset)).bytesWritten;
  };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      observe(chunk);
      writeFully(chunk).then(() => callback(), callback);
    },
    writev(chunks, callback) {
      const bytes = Buffer.concat(chunks.map((c) => c.chunk as Buffer));
      observe(bytes);
      writeFully(bytes).then(() => callback(), callback);
    },
  });
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Errors that mean "no object at this key" (absent, a path through a file, a symlink refused by O_NOFOLLOW). */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ELOOP']);

/** How many of a directory's next entries a listing reads or stats ahead of the one it yields. */
const WALK_AHEAD = 16;

/** A name of a listed directory: a folder to walk, or a file (an object, or a temp file counted under the name it was written for). */
interface DirectoryEntry {
  name: string;
  keyName: string;
  isDirectory: boolean;
  sortKey: string;
}

class FsStorageDriver implements StorageDriver {
  readonly name = 'fs' as const;
  private readonly root: string;
  private readonly rootPrefix: string;
  private readonly publicBaseUrl: string;
  /** realpath(root), once it exists: every real path we touch must be exactly realRoot/<key>. */
  private realRoot: string | undefined;

  constructor({ root, publicBaseUrl }: FsDriverOptions) {
    this.root = path.resolve(root);
    this.rootPrefix = this.root.endsWith(path.sep) ? this.root : this.root + path.sep;
    this.publicBaseUrl = publicBaseUrl;
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions): Promise<StoredObject> {
    let handle: FileHandle, temp: string, target: string;
    try {
      target = this.pathOf(key);
      ({ handle, temp } = await this.createTempFile(key, target));
    } catch (err) {
      // Refused before reading a byte: let the caller's stream (a socket, a file) go.
      if (!Buffer.isBuffer(body)) body.destroy();
      throw err;
    }
    return this.writeAndRename(key, handle, temp, target, body, options);
  }

  async get(key: string): Promise<Readable> {
    const file = this.pathOf(key);
    let handle: FileHandle;
    try {
      handle = await fsp.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (err) {
      if (ABSENT.has(errorCode(err) ?? '')) throw new StorageObjectNotFoundError(key);
      throw err;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile() || !(await this.isReal(path.dirname(file), key))) throw new StorageObjectNotFoundError(key);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle.createReadStream();
  }

  async stat(key: string): Promise<StoredObject | null> {
    const file = this.pathOf(key);
    const stats = await this.lstatOrNull(file);
    if (!stats?.isFile() || !(await this.isReal(path.dirname(file), key))) return null;
    return { key, size: stats.size, modifiedAt: stats.mtime, contentType: contentTypeOfKey(key) };
  }

  async copy(fromKey: string, toKey: string, options: Partial<PutOptions> = {}): Promise<StoredObject> {
    this.pathOf(toKey);
    // Bytes, not a hard link: overwriting one key later must never change the other.
    const source = await this.get(fromKey);
    return this.put(toKey, source, { ...options, contentType: options.contentType ?? contentTypeOfKey(toKey) });
  }

  async delete(key: string): Promise<boolean> {
    const file = this.pathOf(key);
    const stats = await this.lstatOrNull(file);
    // Only regular files are objects; a symlink or a directory under a key is left alone.
    if (!stats?.isFile() || !(await this.isReal(path.dirname(file), key))) return false;
    try {
      await fsp.unlink(file);
    } catch (err) {
      if (ABSENT.has(errorCode(err) ?? '')) return false;
      throw err;
    }
    await this.removeEmptyParents(path.dirname(file));
    return true;
  }

  async *list(prefix: string): AsyncGenerator<StoredObject> {
    for await (const { key, stats } of this.walkFrom(prefix, 'objects')) {
      yield { key, size: stats.size, modifiedAt: stats.mtime, contentType: contentTypeOfKey(key) };
    }
  }

  async *listUnfinishedWrites(prefix: string): AsyncGenerator<UnfinishedWrite> {
    for await (const { key, name, stats } of this.walkFrom(prefix, 'temp-files')) {
      yield { key, id: name, lastWrittenAt: stats.mtime, size: stats.size };
    }
  }

  async removeUnfinishedWrite(write: UnfinishedWrite, { quietSince }: { quietSince: Date }): Promise<UnfinishedWriteRemoval> {
    // Only ever one of our temp files, in the folder of the key it was written for.
    if (writtenName(write.id) === null || write.id.includes('/') || UNSAFE_NAME.test(write.id)) {
      throw new InvalidStorageKeyError(write.key, `${JSON.stringify(write.id)} is not the temp file of an unfinished write`);
    }
    const slash = write.key.lastIndexOf('/');
    const dir = slash < 0 ? this.root : this.pathOf(write.key.slice(0, slash));
    const file = path.join(dir, write.id);
    const stats = await this.lstatOrNull(file);
    if (!stats?.isFile() || !(await this.isReal(dir, write.key))) return 'gone'; // renamed by its writer, or removed
    // Every chunk a live writer writes moves the mtime, and it renames within moments of the last.
    if (stats.mtime > quietSince) return 'still-written';
    try {
      await fsp.unlink(file);
    } catch (err) {
      if (ABSENT.has(errorCode(err) ?? '')) return 'gone';
      throw err;
    }
    await this.removeEmptyParents(dir);
    return 'removed';
  }

  publicUrl(key: string): string {
    return publicUrl(this.publicBaseUrl, assertSafeKey(key));
  }

  /** The file of a key; the only place a path is built from a key. */
  private pathOf(key: string): string {
    assertSafeKey(key);
    const file = path.resolve(this.root, ...key.split('/'));
    if (!file.startsWith(this.rootPrefix)) throw new InvalidStorageKeyError(key, 'resolves outside the storage root');
    return file;
  }

  /**
   * The objects (or the temp files of unfinished writes) whose key starts with `prefix`.
   * "products/ab" covers products/ab/… and products/abc/…: the walk starts in the last whole
   * directory of the prefix and filters that directory's names by the partial segment.
   */
  private async *walkFrom(prefix: string, files: 'objects' | 'temp-files'): AsyncGenerator<WalkedFile> {
    if (typeof prefix !== 'string' || UNSAFE_NAME.test(prefix)) throw new InvalidStorageKeyError(String(prefix), 'a prefix must not contain backslashes or control characters');
    const slash = prefix.lastIndexOf('/');
    const dirKey = prefix.slice(0, slash + 1);
    const namePrefix = prefix.slice(slash + 1);
    const dir = dirKey ? this.pathOf(dirKey.slice(0, -1)) : this.root;
    if (!(await this.isReal(dir, prefix))) return; // absent, or reached through a symlink
    yield* this.walk(dir, dirKey, namePrefix, files);
  }

  /**
   * Depth-first, keys in sorted order, one directory's names in memory per level. A listing is
   * round trips to the filesystem (a directory read per folder, an lstat per file), so up to
   * WALK_AHEAD of a directory's next entries are read or stat'ed while the current one is
   * yielded: the libuv threads stay busy instead of waiting one call at a time.
   */
  private async *walk(dir: string, keyPrefix: string, namePrefix: string, files: 'objects' | 'temp-files', listed?: Promise<DirectoryEntry[]>): AsyncGenerator<WalkedFile> {
    const entries = await (listed ?? this.readDirectory(dir, namePrefix, files));
    const ahead: Promise<DirectoryEntry[] | Stats | null>[] = [];
    const start = (entry: DirectoryEntry) => {
      const file = path.join(dir, entry.name);
      const work = entry.isDirectory ? this.readDirectory(file, '', files) : this.lstatOrNull(file);
      work.catch(() => undefined); // awaited below in order; a walk abandoned early must not leave it unhandled
      return work;
    };
    for (let i = 0, started = 0; i < entries.length; i++) {
      for (; started < entries.length && started <= i + WALK_AHEAD; started++) ahead.push(start(entries[started]));
      const entry = entries[i];
      const work = ahead.shift()!;
      if (entry.isDirectory) {
        yield* this.walk(path.join(dir, entry.name), `${keyPrefix}${entry.name}/`, '', files, work as Promise<DirectoryEntry[]>);
        continue;
      }
      const stats = (await work) as Stats | null; // null: gone since the directory was read, skip it
      if (stats?.isFile()) yield { key: keyPrefix + entry.keyName, name: entry.name, stats };
    }
  }

  private async readDirectory(dir: string, namePrefix: string, files: 'objects' | 'temp-files'): Promise<DirectoryEntry[]> {
    const entries: DirectoryEntry[] = [];
    let handle;
    try {
      handle = await fsp.opendir(dir);
    } catch (err) {
      if (ABSENT.has(errorCode(err) ?? '')) return entries;
      throw err;
    }
    for await (const entry of handle) {
      const name = entry.name;
      if (UNSAFE_NAME.test(name)) continue;
      // A temp file counts under the name it was written for; the driver makes no temp folders.
      const tempOf = writtenName(name);
      const keyName = tempOf ?? name;
      if (!keyName.startsWith(namePrefix)) continue;
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      if (!isDirectory && !isFile && !entry.isSymbolicLink()) {
        // Some filesystems do not report entry types: ask.
        const stats = await this.lstatOrNull(path.join(dir, name));
        isDirectory = stats?.isDirectory() ?? false;
        isFile = stats?.isFile() ?? false;
      }
      const wanted = isDirectory ? tempOf === null : isFile && (files === 'temp-files') === (tempOf !== null);
      // A directory sorts as "name/", so the depth-first walk yields keys in string order.
      if (wanted) entries.push({ name, keyName, isDirectory, sortKey: isDirectory ? `${name}/` : keyName });
    }
    return entries.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  }

  /** A fresh temp file beside `target`, its directories created (and re-created if a concurrent delete pruned them). */
  private async createTempFile(key: string, target: string): Promise<{ handle: FileHandle; temp: string }> {
    const dir = path.dirname(target);
    for (let attempt = 1; ; attempt++) {
      await this.ensureDirectory(dir, key);
      const temp = path.join(dir, tempFileName(path.basename(target)));
      try {
        const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
        return { handle: await fsp.open(temp, flags, 0o644), temp };
      } catch (err) {
        if (errorCode(err) !== 'ENOENT' || attempt >= MAX_WRITE_ATTEMPTS) throw err;
      }
    }
  }

  /**
   * mkdir -p, but the deepest folder that already exists is checked first: mkdir follows a
   * planted symlink and would create folders outside the root before any check after it.
   */
  private async ensureDirectory(dir: string, key: string): Promise<void> {
    let existing = dir;
    let rootCreated = false;
    for (;;) {
      try {
        await this.assertReal(existing, key);
        break;
      } catch (err) {
        if (!ABSENT.has(errorCode(err) ?? '') || (existing === this.root && rootCreated)) throw err;
        if (existing === this.root) {
          await fsp.mkdir(this.root, { recursive: true });
          rootCreated = true;
        } else {
          existing = path.dirname(existing);
        }
      }
    }
    if (existing === dir) return;
    await fsp.mkdir(dir, { recursive: true });
    await this.assertReal(dir, key);
  }

  private async writeAndRename(key: string, handle: FileHandle, temp: string, target: string, body: Buffer | Readable, options: PutOptions): Promise<StoredObject> {
    const hash = createHash('sha256');
    let size = 0;
    let open = true;
    try {
      if (Buffer.isBuffer(body)) {
        hash.update(body);
        size = body.length;
        await handle.writeFile(body);
      } else {
        await pipeline(body, fileSink(handle, (bytes) => {
          hash.update(bytes);
          size += bytes.length;
        }));
      }
      // Durability, decided with data. The bytes are on disk before put returns, so before any
      // caller records a row naming the key (the download worker marks an image 'downloaded'
      // only after this). Without the fsync a crash can leave the renamed file empty or cut
      // short under a row that says it is whole: ext4 allocates delayed data well after the
      // rename (its auto_da_alloc flush covers only a rename over an existing file), and the
      // consistency check looks for missing files, not damaged ones.
      // The directory is not fsynced: after a power cut the key holds the old content, the new
      // one or nothing, each whole. "Nothing" under a downloaded row is a missing file, which
      // the consistency check finds and its fix queues again (every writing job is idempotent).
      // Cost, measured (20 puts of 105 KB at once, 2 cores, ext4): 4.5 → 9.5 ms a put, still
      // about 2,000 puts/s, and no more CPU. The download worker fetches other images meanwhile,
      // so the fsync costs it latency, not throughput (`npm run bench -- download`: the same
      // ratio with and without it, within the run-to-run noise). fdatasync, not fsync: it flushes
      // the bytes and the metadata needed to read them back (size, blocks), not the timestamps.
      await handle.datasync();
      open = false;
      await handle.close();
      await fsp.rename(temp, target);
      // The time of the rename: an fstat just for the mtime would be one more trip to the thread pool.
      return { key, size, modifiedAt: new Date(), sha256: hash.digest('hex'), contentType: options.contentType };
    } catch (err) {
      if (open) await handle.close().catch(() => undefined);
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** Best effort: a concurrent write may fill a directory again, and that is fine. */
  private async removeEmptyParents(dir: string): Promise<void> {
    for (let current = dir; current.startsWith(this.rootPrefix); current = path.dirname(current)) {
      try {
        await fsp.rmdir(current);
      } catch {
        return;
      }
    }
  }

  private async lstatOrNull(file: string): Promise<Stats | null> {
    try {
      return await fsp.lstat(file);
    } catch (err) {
      if (ABSENT.has(errorCode(err) ?? '')) return null;
      throw err;
    }
  }

  /** True when `dir` (inside the root) is reached through no symlink: its real path is where it should be. */
  private async isReal(dir: string, key: string): Promise<boolean> {
    try {
      await this.assertReal(dir, key);
      return true;
    } catch (err) {
      if (err instanceof InvalidStorageKeyError || ABSENT.has(errorCode(err) ?? '')) return false;
      throw err;
    }
  }

  private async assertReal(dir: string, key: string): Promise<void> {
    this.realRoot ??= await fsp.realpath(this.root);
    const expected = dir === this.root ? this.realRoot : path.join(this.realRoot, path.relative(this.root, dir));
    if ((await fsp.realpath(dir)) !== expected) throw new InvalidStorageKeyError(key, 'is reached through a symbolic link');
  }
}
