// The repositories of one EntityManager (a DataSource's manager, or a transaction's), each built
// on first use. HTTP routes take their data access from here instead of constructing repository
// classes inline, so a route names what it reads, not how the data layer is assembled.
import type { EntityManager } from 'typeorm';
import { BackupRepository } from './backup.repository';
import { ConsistencyReportRepository } from './consistency-report.repository';
import { ProductImageRepository } from './product-image.repository';
import { ProductSearchRepository } from './product-search.repository';
import { ProductRepository } from './product.repository';
import { SupplierRepository } from './supplier.repository';
import { SyncRecordRepository } from './sync-record.repository';

export class Repositories {
  private readonly built = new Map<string, unknown>();

  constructor(readonly manager: EntityManager) {}

  get products(): ProductRepository {
    return this.once('products', () => new ProductRepository(this.manager));
  }

  get suppliers(): SupplierRepository {
    return this.once('suppliers', () => new SupplierRepository(this.manager));
  }

  /** Product images as the API reads them (and the operator's retry reset). */
  get images(): ProductImageRepository {
    return this.once('images', () => new ProductImageRepository(this.manager));
  }

  get search(): ProductSearchRepository {
    return this.once('search', () => new ProductSearchRepository(this.manager));
  }

  get syncRecords(): SyncRecordRepository {
    return this.once('syncRecords', () => new SyncRecordRepository(this.manager));
  }

  get consistencyReports(): ConsistencyReportRepository {
    return this.once('consistencyReports', () => new ConsistencyReportRepository(this.manager));
  }

  get backups(): BackupRepository {
    return this.once('backups', () => new BackupRepository(this.manager));
  }

  private once<T>(name: string, build: () => T): T {
    if (!this.built.has(name)) this.built.set(name, build());
    return this.built.get(name) as T;
  }
}
