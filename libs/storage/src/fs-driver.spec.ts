import { mkdir, mkdtemp, readFile, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { createFsDriver, tempFileName } from './fs-driver';
import { createBackupCopyTarget, createStorageDriver } from './storage';
import { InvalidStorageKeyError, type StorageDriver, StorageObjectNotFoundError } from './storage-driver';
import { describeStorageDriverContract, failureOf } from './storage-driver.contract';

const BASE_URL = 'http://127.0.0.1:3000/files';
const JPEG = { contentType: 'image/jpeg' };

/** The file of a key's folder plus a name, under `root`. */
const beside = (root: string, key: string, name: string) => path.join(root, ...key.split('/').slice(0, -1), name);

describeStorageDriverContract('fs', async () => {
  const root = await mkdtemp(path.join(tmpdir(), '1688sync-storage-'));
  return {
    driver: createFsDriver({ root, publicBaseUrl: BASE_URL }),
    cleanup: () => rm(root, { recursive: true, force: true }),
    // A writer killed between its first bytes and the rename: its temp file, named as the driver names it.
    async abandonWrite(key, bytes) {
      const temp = beside(root, key, tempFileName(key.split('/').at(-1)!));
      await mkdir(path.dirname(temp), { recursive: true });
      await writeFile(temp, bytes);
    },
    async ageUnfinishedWrite(write, hours) {
      const when = new Date(Date.now() - hours * 3_600_000);
      await utimes(beside(root, write.key, write.id), when, when);
    },
  };
});

/** Every file and folder under `dir`, relative, '/'-separated. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map((p) => p.split(path.sep).join('/')).sort();
}


describe('the fs storage driver on disk', () => {
  let sandbox: string;
  let root: string;
  let outside: string;
  let driver: StorageDriver;

  beforeEach(async () => {
    sandbox = await mkdtemp(path.join(tmpdir(), '1688sync-fs-driver-'));
    root = path.join(sandbox, 'images');
    outside = path.join(sandbox, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), 'outside the storage root');
    driver = createFsDriver({ root, publicBaseUrl: BASE_URL });
  });
  afterEach(async () => {
    await rm(sandbox, { recursive: true, force: true });
  });

  it('writes each key to <root>/<key>', async () => {
    await driver.put('products/abc/p1/original/i1.jpg', Buffer.from('photo'), JPEG);
    expect(await readFile(path.join(root, 'products/abc/p1/original/i1.jpg'), 'utf8')).toBe('photo');
    expect(driver.publicUrl('products/abc/p1/original/i1.jpg')).toBe(`${BASE_URL}/products/abc/p1/original/i1.jpg`);
  });

  it('works before the root exists, and creates it on the first write', async () => {
    expect(await driver.stat('a/b.jpg')).toBeNull();
    expect(await failureOf(() => driver.get('a/b.jpg'))).toBeInstanceOf(StorageObjectNotFoundError);
    expect(await driver.delete('a/b.jpg')).toBe(false);
    const listed = [];
    for await (const object of driver.list('')) listed.push(object);
    expect(listed).toEqual([]);

    await driver.put('a/b.jpg', Buffer.from('x'), JPEG);
    expect(await tree(root)).toEqual(['a', 'a/b.jpg']);
  });

  it('leaves no temp file behind after a write, a failed write or a refused write', async () => {
    await driver.put('a/ok.jpg', Buffer.from('ok'), JPEG);
    await driver.put('a/streamed.jpg', Readable.from([Buffer.from('ok')]), JPEG);
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(10_000));
        this.destroy(new Error('source went away'));
      },
    });
    expect(await failureOf(() => driver.put('a/failed.jpg', failing, JPEG))).toBeInstanceOf(Error);
    await mkdir(path.join(root, 'a/is-a-folder.jpg'));
    expect(await failureOf(() => driver.put('a/is-a-folder.jpg', Buffer.from('x'), JPEG))).toBeInstanceOf(Error);

    expect(await tree(root)).toEqual(['a', 'a/is-a-folder.jpg', 'a/ok.jpg', 'a/streamed.jpg']);
  });

  it('removes the folders a delete leaves empty, up to but not including the root', async () => {
    await driver.put('products/abc/p1/original/i1.jpg', Buffer.from('1'), JPEG);
    await driver.put('products/abc/p2/original/i2.jpg', Buffer.from('2'), JPEG);
    await driver.put('top.jpg', Buffer.from('t'), JPEG);

    expect(await driver.delete('products/abc/p1/original/i1.jpg')).toBe(true);
    expect(await tree(root)).toEqual(['products', 'products/abc', 'products/abc/p2', 'products/abc/p2/original', 'products/abc/p2/original/i2.jpg', 'top.jpg']);

    expect(await driver.delete('products/abc/p2/original/i2.jpg')).toBe(true);
    expect(await driver.delete('top.jpg')).toBe(true);
    expect(await tree(root)).toEqual([]);
  });

  it('does not list temp files of an interrupted write, but lists other dot-files', async () => {
    await driver.put('a/.hidden.jpg', Buffer.from('h'), JPEG);
    await writeFile(path.join(root, 'a/.i1.jpg.0123456789abcdef.tmp'), 'half a photo');
    const keys = [];
    for await (const object of driver.list('a/')) keys.push(object.key);
    expect(keys).toEqual(['a/.hidden.jpg']);
  });

  it('walks lazily: it reads a bounded number of folders ahead, and one far later in the walk only when the walk nears it', async () => {
    const folders = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const f of folders) await driver.put(`lazy/${f}/1.jpg`, Buffer.from(f), JPEG);
    const walk = driver.list('lazy/')[Symbol.asyncIterator]();
    expect((await walk.next()).value).toMatchObject({ key: 'lazy/f00/1.jpg' });

    await driver.put('lazy/f39/2-written-during-the-walk.jpg', Buffer.from('2'), JPEG);
    const rest = [];
    for (let step = await walk.next(); !step.done; step = await walk.next()) rest.push(step.value.key);
    expect(rest).toEqual([...folders.slice(1).map((f) => `lazy/${f}/1.jpg`), 'lazy/f39/2-written-during-the-walk.jpg']);
  });

  it('lists a wide, deep tree in key order with its reads running ahead', async () => {
    const keys: string[] = [];
    for (let p = 0; p < 30; p++) for (const v of ['compressed', 'original']) for (let i = 0; i < 5; i++) keys.push(`wide/${String(p).padStart(2, '0')}/${v}/${i}.jpg`);
    await Promise.all(keys.map((k) => driver.put(k, Buffer.from(k), JPEG)));
    const listed = [];
    for await (const object of driver.list('wide/')) listed.push(object.key);
    expect(listed).toEqual([...keys].sort());
  });

  describe('symbolic links (the driver makes none, so any it finds are foreign)', () => {
    it('does not follow a symlinked file to content outside the root', async () => {
      await driver.put('products/real.jpg', Buffer.from('real'), JPEG);
      await symlink(path.join(outside, 'secret.txt'), path.join(root, 'products/link.jpg'));

      expect(await failureOf(() => driver.get('products/link.jpg'))).toBeInstanceOf(StorageObjectNotFoundError);
      expect(await driver.stat('products/link.jpg')).toBeNull();
      expect(await failureOf(() => driver.copy('products/link.jpg', 'products/copy.jpg'))).toBeInstanceOf(StorageObjectNotFoundError);
      expect(await driver.delete('products/link.jpg')).toBe(false);
      const keys = [];
      for await (const object of driver.list('products/')) keys.push(object.key);
      expect(keys).toEqual(['products/real.jpg']);
      expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('outside the storage root');
    });

    it('neither reads, writes nor deletes through a symlinked folder', async () => {
      await mkdir(path.join(root, 'products'), { recursive: true });
      await symlink(outside, path.join(root, 'products/evil'));

      expect(await failureOf(() => driver.get('products/evil/secret.txt'))).toBeInstanceOf(StorageObjectNotFoundError);
      expect(await driver.stat('products/evil/secret.txt')).toBeNull();
      expect(await driver.delete('products/evil/secret.txt')).toBe(false);
      expect(await failureOf(() => driver.put('products/evil/planted.jpg', Buffer.from('x'), JPEG))).toBeInstanceOf(InvalidStorageKeyError);
      expect(await failureOf(() => driver.put('products/evil/new/folders/planted.jpg', Buffer.from('x'), JPEG))).toBeInstanceOf(InvalidStorageKeyError);
      expect(await failureOf(() => driver.copy('products/evil/secret.txt', 'products/copied.txt'))).toBeInstanceOf(StorageObjectNotFoundError);
      const keys = [];
      for await (const object of driver.list('products/')) keys.push(object.key);
      for await (const object of driver.list('products/evil/')) keys.push(object.key);
      expect(keys).toEqual([]);
      expect(await tree(outside)).toEqual(['secret.txt']);
    });

    it('works when the root itself is reached through a symlink (STORAGE_DIR on a mounted volume)', async () => {
      const linkedRoot = path.join(sandbox, 'linked-root');
      await mkdir(root);
      await symlink(root, linkedRoot);
      const linked = createFsDriver({ root: linkedRoot, publicBaseUrl: BASE_URL });
      await linked.put('a/b.jpg', Buffer.from('through the link'), JPEG);
      expect(await readFile(path.join(root, 'a/b.jpg'), 'utf8')).toBe('through the link');
      expect(await linked.stat('a/b.jpg')).toMatchObject({ size: 16 });
      expect(await linked.delete('a/b.jpg')).toBe(true);
    });
  });
});

describe('createStorageDriver', () => {
  it('makes an fs driver rooted at STORAGE_DIR that hands out PUBLIC_BASE_URL links', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), '1688sync-storage-config-'));
    try {
      const config = loadConfig({ app: 'ingest-api', env: { STORAGE_DIR: dir, PUBLIC_BASE_URL: 'https://cdn.example.com/img/' } });
      const driver = createStorageDriver(config.storage);
      expect(driver.name).toBe('fs');
      await driver.put('a/b.jpg', Buffer.from('x'), JPEG);
      expect(await readFile(path.join(dir, 'a/b.jpg'), 'utf8')).toBe('x');
      expect(driver.publicUrl('a/b.jpg')).toBe('https://cdn.example.com/img/a/b.jpg');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('makes the s3 driver for STORAGE_DRIVER=s3 (exercised against a real server in s3-driver.spec.ts)', () => {
    const config = loadConfig({ app: 'ingest-api', env: { STORAGE_DRIVER: 's3', S3_BUCKET: 'images', PUBLIC_BASE_URL: 'https://cdn.example.com/img' } });
    const driver = createStorageDriver(config.storage);
    expect(driver.name).toBe('s3');
    expect(driver.publicUrl('a/b.jpg')).toBe('https://cdn.example.com/img/a/b.jpg');
  });

  it('copies backups to the S3 bucket only when BACKUP_COPY_TO_S3 is true, whatever STORAGE_DRIVER is', () => {
    expect(createBackupCopyTarget(loadConfig({ app: 'maintenance-worker', env: {} }))).toBeNull();
    expect(createBackupCopyTarget(loadConfig({ app: 'maintenance-worker', env: { STORAGE_DRIVER: 's3', S3_BUCKET: 'images' } }))).toBeNull();
    const target = createBackupCopyTarget(loadConfig({ app: 'maintenance-worker', env: { BACKUP_COPY_TO_S3: 'true', S3_BUCKET: 'backups' } }));
    expect(target?.name).toBe('s3');
  });
});
