// A 1688 offer. external_id is its offerId.
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { BaseEntity, numericTransformer } from './base.entity';
import { Supplier } from './supplier.entity';

export const SYNC_STATUSES = ['pending', 'synced', 'failed'] as const;
export type SyncStatus = (typeof SYNC_STATUSES)[number];
export const SOURCE_STATUSES = ['active', 'inactive'] as const;
export type SourceStatus = (typeof SOURCE_STATUSES)[number];

export interface PriceTier {
  minQuantity: number;
  price: number;
}
export interface Sku {
  externalId?: string;
  attributes?: Record<string, string>;
  price?: number;
  stock?: number;
}

// Indexes written by hand in the migration (partial, expression and GIN indexes TypeORM cannot
// express); `synchronize: false` tells the schema diff they are ours.
@Entity({ name: 'products' })
@Index('products_supplier_idx', { synchronize: false })
@Index('products_category_idx', { synchronize: false })
@Index('products_sync_status_idx', { synchronize: false })
@Index('products_updated_idx', { synchronize: false })
@Index('products_created_idx', { synchronize: false })
@Index('products_price_asc_idx', { synchronize: false })
@Index('products_price_desc_idx', { synchronize: false })
@Index('products_sales_idx', { synchronize: false })
@Index('products_search_vector_idx', { synchronize: false })
export class Product extends BaseEntity {
  @Index('products_external_id_key', { unique: true })
  @Column({ name: 'external_id', type: 'varchar', length: 128 })
  externalId!: string;

  @Column({ name: 'supplier_id', type: 'uuid', nullable: true })
  supplierId!: string | null;

  @ManyToOne(() => Supplier, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn({ name: 'supplier_id', foreignKeyConstraintName: 'products_supplier_id_fkey' })
  supplier?: Supplier | null;

  @Column({ name: 'title', type: 'text' })
  title!: string;

  @Column({ name: 'category_id', type: 'varchar', length: 128, nullable: true })
  categoryId!: string | null;

  @Column({ name: 'category_path', type: 'jsonb', nullable: true })
  categoryPath!: string[] | null;

  @Column({ name: 'price_min', type: 'numeric', precision: 14, scale: 4, nullable: true, transformer: numericTransformer })
  priceMin!: number | null;

  @Column({ name: 'price_max', type: 'numeric', precision: 14, scale: 4, nullable: true, transformer: numericTransformer })
  priceMax!: number | null;

  @Column({ name: 'currency', type: 'varchar', length: 3, default: 'CNY' })
  currency!: string;

  /** Quantity breaks: [{ minQuantity, price }]. */
  @Column({ name: 'price_tiers', type: 'jsonb', nullable: true })
  priceTiers!: PriceTier[] | null;

  @Column({ name: 'moq', type: 'integer', nullable: true })
  moq!: number | null;

  @Column({ name: 'unit', type: 'varchar', length: 64, nullable: true })
  unit!: string | null;

  @Column({ name: 'skus', type: 'jsonb', nullable: true })
  skus!: Sku[] | null;

  @Column({ name: 'attributes', type: 'jsonb', nullable: true })
  attributes!: Record<string, string> | null;

  @Column({ name: 'detail_url', type: 'varchar', length: 2048, nullable: true })
  detailUrl!: string | null;

  /** active/inactive on 1688. */
  @Column({ name: 'source_status', type: 'varchar', length: 16, nullable: true })
  sourceStatus!: SourceStatus | null;

  @Column({ name: 'sales_count', type: 'integer', nullable: true })
  salesCount!: number | null;

  @Column({ name: 'sync_status', type: 'varchar', length: 16, default: 'pending' })
  syncStatus!: SyncStatus;

  /** Whether product.images_ready was last emitted and still holds (ImageReadiness). */
  @Column({ name: 'images_ready', type: 'boolean', default: false })
  imagesReady!: boolean;

  @Column({ name: 'content_hash', type: 'varchar', length: 64, nullable: true })
  contentHash!: string | null;

  /** Hash of the image list last applied: a batch whose list is unchanged skips the image diff. */
  @Column({ name: 'images_hash', type: 'varchar', length: 64, nullable: true })
  imagesHash!: string | null;

  @Column({ name: 'last_synced_at', type: 'timestamptz', nullable: true })
  lastSyncedAt!: Date | null;

  @Column({ name: 'source_updated_at', type: 'timestamptz', nullable: true })
  sourceUpdatedAt!: Date | null;

  @Column({ name: 'raw', type: 'jsonb', nullable: true })
  raw!: unknown;

  /**
   * Character n-grams of the title and attribute values, kept by a trigger (see the migration):
   * substring search that works for Chinese, which has no spaces between words.
   */
  @Column({ name: 'search_vector', type: 'tsvector', nullable: true, select: false, insert: false, update: false })
  searchVector?: string;
}
