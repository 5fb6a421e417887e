// Picks the StorageDriver named by STORAGE_DRIVER: the one place apps get their storage from.
import path from 'node:path';
import type { Config } from '@1688sync/config';
import { createFsDriver } from './fs-driver';
import type { StorageDriver } from './storage-driver';

export function createStorageDriver(config: Config['storage']): StorageDriver {
  switch (config.driver) {
    case 'fs':
      return createFsDriver({ root: path.resolve(config.dir), publicBaseUrl: config.publicBaseUrl });
    case 's3':
      throw new Error('STORAGE_DRIVER=s3 is not available in this version (the s3 driver comes in a later one); use STORAGE_DRIVER=fs with STORAGE_DIR');
    default:
      throw new Error(`unknown STORAGE_DRIVER ${JSON.stringify(config.driver satisfies never)}`);
  }
}
