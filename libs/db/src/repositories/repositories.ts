// The repositories of one EntityManager (a DataSource's manager, or a transaction's), each built
// on first use. HTTP routes take their data access from here instead of constructing repository
// classes inline, so a route names what it reads, not how the data layer is assembled.
import type { EntityManager } from 'typeorm';
import { BackupRepository } from './backup.repository';
import { ChangeFeedRepository } from './change-feed.repository';
import { ConsistencyReportRepository } from './consistency-report.repository';
import { ImageReadRepository } from './image-read.repository';
import { ProductHistoryRepository } from './product-history.repository';
import { ImageWorkRepository } from './image-work.repository';
import { PartitionRepository } from './partition.repository';
import { ProductSearchRepository } from './product-search.repository';
import { ProductRepository } from './product.repository';
import { SupplierRepository } from './supplier.repository';
import { SyncRecordRepository } from './sync-record.repository';
import { WebhookDeliveryRepository } from './webhook-delivery.repository';
import { WebhookSubscriptionRepository } from './webhook-subscription.repository';
import { ProductGroupRepository } from './product-group.repository';
import { SimilarityRepository } from './similarity.repository';

export class Repositories {
  private readonly built = new Map<string, unknown>();

  constructor(readonly manager: EntityManager) {}

  get products(): ProductRepository {
    return this.once('products', () => new ProductRepository(this.manager));
  }

  get suppliers(): SupplierRepository {
    return this.once('suppliers', () => new SupplierRepository(this.manager));
  }

  /** Product images as the API reads them. */
  get images(): ImageReadRepository {
    return this.once('images', () => new ImageReadRepository(this.manager));
  }

  /** The image work scans and resets (retry failed images, reprocess under new settings). */
  get imageWork(): ImageWorkRepository {
    return this.once('imageWork', () => new ImageWorkRepository(this.manager));
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

  /** The change feed: events recorded by changes, their positions, its pages. */
  get changes(): ChangeFeedRepository {
    return this.once('changes', () => new ChangeFeedRepository(this.manager));
  }

  get history(): ProductHistoryRepository {
    return this.once('history', () => new ProductHistoryRepository(this.manager));
  }

  /** The monthly partitions of events, history and deliveries (maintain-partitions, the consistency check). */
  get partitions(): PartitionRepository {
    return this.once('partitions', () => new PartitionRepository(this.manager));
  }

  /** 同款 reads: near-duplicate images of a product or an image (replica-ready: reads only). */
  get similarity(): SimilarityRepository {
    return this.once('similarity', () => new SimilarityRepository(this.manager));
  }

  /** Stored 同款 groups. */
  get productGroups(): ProductGroupRepository {
    return this.once('productGroups', () => new ProductGroupRepository(this.manager));
  }

  /** Webhook subscriptions: who wants which events, where, signed how. */
  get webhooks(): WebhookSubscriptionRepository {
    return this.once('webhooks', () => new WebhookSubscriptionRepository(this.manager));
  }

  /** Webhook deliveries: one per event per subscription, pending until delivered or failed. */
  get webhookDeliveries(): WebhookDeliveryRepository {
    return this.once('webhookDeliveries', () => new WebhookDeliveryRepository(this.manager));
  }

  private once<T>(name: string, build: () => T): T {
    if (!this.built.has(name)) this.built.set(name, build());
    return this.built.get(name) as T;
  }
}
