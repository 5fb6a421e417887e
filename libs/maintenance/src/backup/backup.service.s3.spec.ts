// Backups with STORAGE_DRIVER=s3 and BACKUP_COPY_TO_S3=true (issues 8 and 10), against a real
// S3-compatible server: the image files are read from the bucket, the artifacts land in the
// bucket under backups/<name>/, a restore puts lost objects back, and prune removes the copy.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createBackupCopyTarget } from '@1688sync/storage';
import { type TestS3Server, startS3Server } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MaintenanceEnv, createMaintenanceEnv } from '../maintenance-env.test-helper';
import { createBackup } from './backup.service';
import { fileDigests, seedWithFiles, tableDigests } from './backup.test-helper';
import { archiveKeys } from './file-archive';
import { pruneBackups } from './prune.service';
import { type RestoreResult, restoreBackup } from './restore.service';

const ARTIFACTS = ['db.dump', 'files.tar.gz', 'manifest.json'];
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('backups with the s3 driver, copied to the bucket', () => {
  let s3: TestS3Server;
  let env: MaintenanceEnv;
  let raw: S3Client;

  beforeAll(async () => {
    s3 = await startS3Server({ label: 'backup-s3' });
    env = await createMaintenanceEnv('backup_s3', { ...s3.env, BACKUP_COPY_TO_S3: 'true' });
    raw = s3.client();
  });
  afterAll(async () => {
    raw?.destroy();
    await env?.close();
    await s3?.stop();
  });

  /** An object's bytes straight from the bucket (not through 1688sync's driver). */
  async function objectBytes(key: string): Promise<Buffer> {
    const res = await raw.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  it('backs up the images of the bucket, lands the backup in the bucket, restores lost objects, and prune removes the copy', async () => {
    expect(env.storage.name).toBe('s3');
    const copyTo = createBackupCopyTarget(env.config);
    expect(copyTo?.name).toBe('s3');
    const { keys } = await seedWithFiles(env, { products: 2, images: 2 });
    const filesBefore = await fileDigests(env.storage);
    expect(Object.keys(filesBefore).sort()).toEqual([...keys].sort());
    const tablesBefore = await tableDigests(env.dataSource);

    const backup = await createBackup(env.deps, { kind: 'full', copyTo });
    expect(backup).toMatchObject({ status: 'succeeded', fileCount: keys.length, archivedFileCount: keys.length, remoteLocation: `s3:backups/${backup.name}/` });

    // The archive holds the bucket's image files; the copy in the bucket is byte for byte the local backup.
    const local = path.join(env.backupDir, backup.name);
    expect((await archiveKeys(path.join(local, 'files.tar.gz'))).sort()).toEqual([...keys].sort());
    for (const artifact of ARTIFACTS) {
      const copied = await objectBytes(`backups/${backup.name}/${artifact}`);
      expect(sha256(copied), artifact).toBe(sha256(await readFile(path.join(local, artifact))));
    }

    // Objects lost from the bucket and a row deleted come back with a restore.
    await raw.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: keys[0] }));
    await env.dataSource.query(`DELETE FROM product_images WHERE id = (SELECT id FROM product_images ORDER BY id LIMIT 1)`);
    const restored = (await restoreBackup(env.deps, backup.id, { yes: true })) as RestoreResult;
    expect(restored).toMatchObject({ dryRun: false, verified: true, files: keys.length });
    expect(await fileDigests(env.storage)).toEqual(filesBefore);
    // Every table as it was, but for the sync record of the reconcile that ran after the restore.
    expect(await tableDigests(env.dataSource, { sync_records: `id <> '${restored.reconciled!.syncRecordId}'` })).toEqual(tablesBefore);

    // Prune with keep-min 1 removes the older backup (the manual one; the safety backup is newer) and its copy in the bucket.
    const pruned = await pruneBackups(env.deps, { copyTo, retentionDays: 0, keepMin: 1 });
    expect(pruned.pruned.map((b) => b.id)).toEqual([backup.id]);
    const left: string[] = [];
    for await (const object of copyTo!.list(`backups/${backup.name}/`)) left.push(object.key);
    expect(left).toEqual([]);
  });
});
