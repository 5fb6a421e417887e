// manifest.json: what a backup holds, written and read as a stream so that a million files never
// sit in memory. It is ordinary JSON, laid out one value per line:
//
//   {"format":"1688sync-backup","formatVersion":1,"backupId":…,…,"files":[
//   {"key":"products/…","size":…,"sha256":…,"modifiedAt":…,"archive":"<backup id>"},
//   …
//   ]}
//
// The first line is the header (every field but `files`); then one file per line, in the
// storage listing's (ascending key) order; then the closing line. Readers verify the file's
// SHA-256 (recorded in the backups row) before trusting this layout.
import { AppError } from '@1688sync/core';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { BackupKind } from '@1688sync/db';

export const MANIFEST_FORMAT = '1688sync-backup';
export const MANIFEST_FORMAT_VERSION = 1;

export const MANIFEST_FILE = 'manifest.json';
export const DB_DUMP_FILE = 'db.dump';
export const FILES_ARCHIVE_FILE = 'files.tar.gz';

export interface ArtifactChecksum {
  size: number;
  sha256: string;
}

export interface ManifestHeader {
  format: typeof MANIFEST_FORMAT;
  formatVersion: number;
  backupId: string;
  name: string;
  kind: BackupKind;
  incremental: boolean;
  /** The full backup whose archive holds the files this one's does not. */
  baseBackupId: string | null;
  /** The last migration applied in the dumped database (null for kind files: taken from the live database, for information). */
  schemaVersion: string | null;
  /** Exact rows per table, counted in the dump's snapshot (null without a database part). */
  rowCounts: Record<string, number> | null;
  /** Tables whose data the dump leaves out (the backups catalogue). */
  excludedTableData: string[];
  fileCount: number | null;
  archivedFileCount: number | null;
  artifacts: { 'db.dump': ArtifactChecksum | null; 'files.tar.gz': ArtifactChecksum | null };
  tools: { pgDump: string | null; server: string | null; node: string; sync1688: string };
  createdAt: string;
}

export interface ManifestFile {
  key: string;
  size: number;
  sha256: string;
  /** ISO time the stored object had (an incremental backup reuses the checksum when size and time match). */
  modifiedAt: string;
  /** Id of the backup whose files.tar.gz holds this file. */
  archive: string;
}

const FILES_OPEN = ',"files":[';
const FILES_CLOSE = ']}';

/** Writes the file lines (part of a manifest not yet finished) as they come. */
export class ManifestFilesWriter {
  private readonly out;
  count = 0;

  constructor(readonly path: string) {
    this.out = createWriteStream(path, { mode: 0o600 });
  }

  async add(file: ManifestFile): Promise<void> {
    if (!this.out.write(`${JSON.stringify(file)}\n`)) await once(this.out, 'drain');
    this.count += 1;
  }

  async close(): Promise<void> {
    this.out.end();
    await once(this.out, 'finish');
  }

  destroy(): void {
    this.out.destroy();
  }
}

/** Writes manifest.json from its header and the file lines of a ManifestFilesWriter; returns its checksum. */
export async function writeManifest(target: string, header: ManifestHeader, filesPart: string | null): Promise<ArtifactChecksum> {
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(target, { mode: 0o600 });
  const write = async (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    hash.update(bytes);
    size += bytes.length;
    if (!out.write(bytes)) await once(out, 'drain');
  };
  const head = JSON.stringify(header);
  await write(`${head.slice(0, -1)}${FILES_OPEN}\n`);
  if (filesPart) {
    let previous: string | null = null;
    for await (const line of createInterface({ input: createReadStream(filesPart, 'utf8'), crlfDelay: Infinity })) {
      if (!line) continue;
      if (previous !== null) await write(`${previous},\n`);
      previous = line;
    }
    if (previous !== null) await write(`${previous}\n`);
  }
  await write(`${FILES_CLOSE}\n`);
  out.end();
  await once(out, 'finish');
  return { size, sha256: hash.digest('hex') };
}

/** SHA-256 and size of a file, streamed. */
export async function fileChecksum(path: string): Promise<ArtifactChecksum> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** A manifest that does not have the layout above (or not our format). */
export class ManifestFormatError extends AppError {
  readonly code = 'manifest_format';
  constructor(message: string) {
    super(message, { permanent: true });
  }
}

function lines(path: string) {
  return createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
}

function parseHeader(line: string): ManifestHeader {
  if (!line.endsWith(FILES_OPEN)) throw new ManifestFormatError('manifest.json does not start with its header line');
  let header: ManifestHeader;
  try {
    header = JSON.parse(`${line.slice(0, -FILES_OPEN.length)}}`) as ManifestHeader;
  } catch {
    throw new ManifestFormatError('the header of manifest.json is not valid JSON');
  }
  if (header.format !== MANIFEST_FORMAT) throw new ManifestFormatError(`manifest.json is not a 1688sync backup manifest (format ${JSON.stringify(header.format)})`);
  if (header.formatVersion > MANIFEST_FORMAT_VERSION) {
    throw new ManifestFormatError(`manifest.json has format version ${header.formatVersion}; this version of 1688sync reads up to ${MANIFEST_FORMAT_VERSION}: restore it with a newer 1688sync`);
  }
  return header;
}

/** The header of a manifest (its first line). */
export async function readManifestHeader(path: string): Promise<ManifestHeader> {
  const reader = lines(path);
  try {
    for await (const line of reader) return parseHeader(line);
  } finally {
    reader.close();
  }
  throw new ManifestFormatError('manifest.json is empty');
}

/**
 * The files of a manifest, in its order (ascending key), optionally only those one archive holds.
 * Throws ManifestFormatError on a line that is not a file or on a missing end.
 */
export async function* readManifestFiles(path: string, { archive }: { archive?: string } = {}): AsyncGenerator<ManifestFile> {
  const reader = lines(path);
  let first = true;
  let closed = false;
  try {
    for await (const raw of reader) {
      if (first) {
        parseHeader(raw);
        first = false;
        continue;
      }
      if (raw === FILES_CLOSE) {
        closed = true;
        continue;
      }
      if (closed) {
        if (raw.trim()) throw new ManifestFormatError('manifest.json has text after its end');
        continue;
      }
      const text = raw.endsWith(',') ? raw.slice(0, -1) : raw;
      let file: ManifestFile;
      try {
        file = JSON.parse(text) as ManifestFile;
      } catch {
        throw new ManifestFormatError('a file line of manifest.json is not valid JSON');
      }
      if (typeof file.key !== 'string' || typeof file.sha256 !== 'string' || typeof file.size !== 'number' || typeof file.archive !== 'string') {
        throw new ManifestFormatError(`a file line of manifest.json lacks key, size, sha256 or archive: ${text.slice(0, 200)}`);
      }
      if (archive === undefined || file.archive === archive) yield file;
    }
  } finally {
    reader.close();
  }
  if (first) throw new ManifestFormatError('manifest.json is empty');
  if (!closed) throw new ManifestFormatError('manifest.json ends before its list of files does');
}

/** An async iterator with a look at its next value: for merge walks over two sorted lists. */
export class Peekable<T> {
  private head: IteratorResult<T> | null = null;
  constructor(private readonly it: AsyncIterator<T>) {}

  static of<T>(iterable: AsyncIterable<T>): Peekable<T> {
    return new Peekable(iterable[Symbol.asyncIterator]());
  }

  async peek(): Promise<T | undefined> {
    this.head ??= await this.it.next();
    return this.head.done ? undefined : this.head.value;
  }

  async next(): Promise<T | undefined> {
    const value = await this.peek();
    this.head = null;
    return value;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
