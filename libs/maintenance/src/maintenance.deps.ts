// What every maintenance job gets: the data, the files, the queues, the settings, and the
// logger and metrics to report through. Each job takes only what it uses from this.
import type { Config } from '@1688sync/config';
import type { Logger, Metrics } from '@1688sync/observability';
import type { Producers } from '@1688sync/queues';
import type { StorageDriver } from '@1688sync/storage';
import type { DataSource } from 'typeorm';

export interface MaintenanceDeps {
  dataSource: DataSource;
  /**
   * Connections that are real sessions (DATABASE_DIRECT_URL, around PgBouncer): the backup lock
   * and VACUUM's session settings. `dataSource` when absent (no bouncer).
   */
  session?: DataSource;
  storage: StorageDriver;
  producers: Producers;
  config: Config;
  logger: Logger;
  metrics: Metrics;
}

/** Progress of a long job: the CLI draws it as a bar on a terminal, plain lines otherwise. */
export type ProgressReporter = (event: { stage: string; done: number; total?: number }) => void;
