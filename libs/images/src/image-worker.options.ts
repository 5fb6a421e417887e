// What both image workers (download and process) are started with: the app's wiring, the same
// for each stage.
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import type { Producers } from '@1688sync/queues';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';

export interface ImageWorkerOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** The app's Database: connected on first use, so the worker starts while PostgreSQL is down. */
  db: { dataSource: DataSource; ready(): Promise<DataSource> };
  storage: StorageDriver;
  producers: Producers;
  /** Base delay of the retry backoff (tests make it small). */
  backoffBaseDelayMs?: number;
}
