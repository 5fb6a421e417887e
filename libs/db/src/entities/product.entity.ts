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
  /** SPEC §16: per-SKU weight in grams, 一件代发 price, swatch image (an image of kind `sku`). */
  weightG?: number;
  dropshipPrice?: number;
  imageUrl?: string;
}

/** 1688's quoteType: priced by quantity, per SKU, or SKUs priced by quantity. */
export const QUOTE_TYPES = ['by_quantity', 'by_sku', 'sku_by_quantity'] as const;
export type QuoteType = (typeof QUOTE_TYPES)[number];
/** Where a logistics figure came from: the merchant, 1688's own measurement, or an AI estimate. */
export const SHIPPING_SOURCES = ['merchant', 'official', 'estimated'] as const;
export type ShippingSource = (typeof SHIPPING_SOURCES)[number];

/** 混批 (mixed-batch) rules. */
export interface MixedBatch {
  enabled?: boolean | null;
  minAmount?: number | null;
  minQuantity?: number | null;
}

/** productShippingInfo: ship-from place, package weight and size, and where the numbers came from. */
export interface Shipping {
  fromProvince?: string | null;
  fromCity?: string | null;
  weightKg?: number | null;
  lengthCm?: number | null;
  widthCm?: number | null;
  heightCm?: number | null;
  source?: ShippingSource | null;
  shipWithinHours?: number | null;
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
@Index('products_ship_from_province_idx', { synchronize: false })
@Index('products_ship_from_city_idx', { synchronize: false })
@Index('products_offer_status_idx', { synchronize: false })
@Index('products_dropship_idx', { synchronize: false })
@Index('products_weight_idx', { synchronize: false })
@Index('products_in_stock_idx', { synchronize: false })
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

  // ---- The whole offer (SPEC §16; migration 1764500000000-offer) ----

  /** `{ "<BCP 47 tag>": title }`; searched by `q` like the title. */
  @Column({ name: 'title_translations', type: 'jsonb', nullable: true })
  titleTranslations!: Record<string, string> | null;

  /** `{ "<BCP 47 tag>": { "<translated name>": "<translated value>" } }`, replaced whole when sent. */
  @Column({ name: 'attribute_translations', type: 'jsonb', nullable: true })
  attributeTranslations!: Record<string, Record<string, string>> | null;

  /** 1688's lifecycle word as sent (published, expired, member deleted, auditing, …); `published` makes source_status active. */
  @Column({ name: 'offer_status', type: 'varchar', length: 64, nullable: true })
  offerStatus!: string | null;

  @Column({ name: 'quote_type', type: 'varchar', length: 16, nullable: true })
  quoteType!: QuoteType | null;

  /** 一件代发: the price of one piece, dropshipped. */
  @Column({ name: 'dropship_price', type: 'numeric', precision: 14, scale: 4, nullable: true, transformer: numericTransformer })
  dropshipPrice!: number | null;

  /** 分销: the distribution price. */
  @Column({ name: 'distribution_price', type: 'numeric', precision: 14, scale: 4, nullable: true, transformer: numericTransformer })
  distributionPrice!: number | null;

  @Column({ name: 'mixed_batch', type: 'jsonb', nullable: true })
  mixedBatch!: MixedBatch | null;

  @Column({ name: 'batch_quantity', type: 'integer', nullable: true })
  batchQuantity!: number | null;

  @Column({ name: 'shipping', type: 'jsonb', nullable: true })
  shipping!: Shipping | null;

  @Column({ name: 'monthly_sales', type: 'integer', nullable: true })
  monthlySales!: number | null;

  @Column({ name: 'repurchase_rate', type: 'numeric', precision: 5, scale: 4, nullable: true, transformer: numericTransformer })
  repurchaseRate!: number | null;

  /** Kept, not downloaded. */
  @Column({ name: 'video_urls', type: 'jsonb', nullable: true })
  videoUrls!: string[] | null;

  // Written with the content but not part of it (not hashed): typed copies for the filters of
  // GET /v1/products, and whether price_min/price_max were derived from tiers and SKUs.

  /** price_min/price_max were derived from the tier and SKU prices (the producer sent neither). */
  @Column({ name: 'price_derived', type: 'boolean', default: false })
  priceDerived!: boolean;

  /** shipping.fromProvince, for `shipFrom`. */
  @Column({ name: 'ship_from_province', type: 'varchar', length: 128, nullable: true, select: false })
  shipFromProvince?: string | null;

  /** shipping.fromCity, for `shipFrom`. */
  @Column({ name: 'ship_from_city', type: 'varchar', length: 128, nullable: true, select: false })
  shipFromCity?: string | null;

  /** shipping.weightKg, for `maxWeightKg`. */
  @Column({ name: 'weight_kg', type: 'numeric', precision: 10, scale: 3, nullable: true, select: false, transformer: numericTransformer })
  weightKg?: number | null;

  /** Sum of the SKUs' numeric stock; null when no SKU has one. For `inStock`. */
  @Column({ name: 'stock_total', type: 'bigint', nullable: true, select: false })
  stockTotal?: string | null;

  /**
   * Character n-grams of the title and attribute values, kept by a trigger (see the migration):
   * substring search that works for Chinese, which has no spaces between words.
   */
  @Column({ name: 'search_vector', type: 'tsvector', nullable: true, select: false, insert: false, update: false })
  searchVector?: string;
}
