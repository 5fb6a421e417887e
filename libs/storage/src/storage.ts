// Picks the StorageDriver named by STORAGE_DRIVER: the one place apps get their storage from.
import path from 'node:path';
import type { Config } from '@1688sync/config';
import { createFsDriver } from './fs-driver';
import { createS3Driver } from './s3-driver';
import type { StorageDriver } from './storage-driver';

export function createStorageDriver(config: Config['storage']): StorageDriver {
  switch (config.driver) {
    case 'fs':
      return createFsDriver({ root: path.resolve(config.dir), publicBaseUrl: config.publicBaseUrl });
    case 's3':
      return createS3Driver(config.s3, { publicBaseUrl: config.publicBaseUrl });
    default:
      throw new Error(`unknown STORAGE_DRIVER ${JSON.stringify(config.driver satisfies never)}`);
  }
}

/**
 * Where backups are copied (BACKUP_COPY_TO_S3): the bucket of S3_BUCKET, whatever STORAGE_DRIVER
 * is; null when backups stay in BACKUP_DIR only. The backup feature writes under `backups/<name>/`.
 */
export function createBackupCopyTarget(config: Pick<Config, 'storage' | 'backups'>): StorageDriver | null {
  if (!config.backups.copyToS3) return null;
  return createS3Driver(config.storage.s3, { publicBaseUrl: config.storage.publicBaseUrl });
}
