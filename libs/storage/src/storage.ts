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
