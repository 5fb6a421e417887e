// One image of a product, and the state of its download and processing.
import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { BaseEntity } from './base.entity';
import { Product } from './product.entity';

export const IMAGE_KINDS = ['main', 'gallery', 'detail', 'sku'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];
export const DOWNLOAD_STATUSES = ['pending', 'downloading', 'downloaded', 'failed', 'skipped'] as const;
export type DownloadStatus = (typeof DOWNLOAD_STATUSES)[number];
export const PROCESS_STATUSES = ['pending', 'processing', 'processed', 'failed', 'skipped'] as const;
export type ProcessStatus = (typeof PROCESS_STATUSES)[number];

@Entity({ name: 'product_images' })
@Index('product_images_product_id_position_idx', ['productId', 'position'])
@Index('product_images_download_work_idx', { synchronize: false })
@Index('product_images_process_work_idx', { synchronize: false })
@Index('product_images_url_hash_idx', { synchronize: false })
@Index('product_images_product_url_live_key', { synchronize: false })
@Index('product_images_failed_idx', { synchronize: false })
// The hash bands of the similarity index and the backfill's work list (migration 1764600000000).
@Index('product_images_phash_band0_idx', { synchronize: false })
@Index('product_images_phash_band1_idx', { synchronize: false })
@Index('product_images_phash_band2_idx', { synchronize: false })
@Index('product_images_phash_band3_idx', { synchronize: false })
@Index('product_images_unfingerprinted_idx', { synchronize: false })
export class ProductImage extends BaseEntity {
  @Column({ name: 'product_id', type: 'uuid' })
  productId!: string;

  @ManyToOne(() => Product, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'product_id', foreignKeyConstraintName: 'product_images_product_id_fkey' })
  product?: Product;

  @Column({ name: 'source_url', type: 'text' })
  sourceUrl!: string;

  /** SHA-256 (hex) of source_url: the dedupe key across products. */
  @Column({ name: 'url_hash', type: 'varchar', length: 64 })
  urlHash!: string;

  @Column({ name: 'kind', type: 'varchar', length: 16, default: 'gallery' })
  kind!: ImageKind;

  @Column({ name: 'position', type: 'integer', default: 0 })
  position!: number;

  @Column({ name: 'download_status', type: 'varchar', length: 16, default: 'pending' })
  downloadStatus!: DownloadStatus;

  @Column({ name: 'process_status', type: 'varchar', length: 16, default: 'pending' })
  processStatus!: ProcessStatus;

  /** Lease of the worker that claimed this image; expired leases are claimable again. */
  @Column({ name: 'claimed_until', type: 'timestamptz', nullable: true })
  claimedUntil!: Date | null;

  /** Identifies the claim, so a worker whose lease expired cannot record over its successor. */
  @Column({ name: 'claim_token', type: 'uuid', nullable: true })
  claimToken!: string | null;

  @Column({ name: 'attempts', type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError!: string | null;

  @Column({ name: 'content_sha256', type: 'varchar', length: 64, nullable: true })
  contentSha256!: string | null;

  @Column({ name: 'mime', type: 'varchar', length: 64, nullable: true })
  mime!: string | null;

  @Column({ name: 'width', type: 'integer', nullable: true })
  width!: number | null;

  @Column({ name: 'height', type: 'integer', nullable: true })
  height!: number | null;

  @Column({ name: 'bytes_original', type: 'bigint', nullable: true, transformer: { to: (v: unknown) => v, from: (v: string | null) => (v === null ? null : Number(v)) } })
  bytesOriginal!: number | null;

  @Column({ name: 'bytes_thumbnail', type: 'bigint', nullable: true, transformer: { to: (v: unknown) => v, from: (v: string | null) => (v === null ? null : Number(v)) } })
  bytesThumbnail!: number | null;

  @Column({ name: 'bytes_compressed', type: 'bigint', nullable: true, transformer: { to: (v: unknown) => v, from: (v: string | null) => (v === null ? null : Number(v)) } })
  bytesCompressed!: number | null;

  /** Bytes of each extra format (webp, avif) by format. */
  @Column({ name: 'bytes_extra', type: 'jsonb', nullable: true })
  bytesExtra!: Record<string, number> | null;

  @Column({ name: 'key_original', type: 'varchar', length: 1024, nullable: true })
  keyOriginal!: string | null;

  @Column({ name: 'key_thumbnail', type: 'varchar', length: 1024, nullable: true })
  keyThumbnail!: string | null;

  @Column({ name: 'key_compressed', type: 'varchar', length: 1024, nullable: true })
  keyCompressed!: string | null;

  /** Storage keys of the extra formats by format. */
  @Column({ name: 'keys_extra', type: 'jsonb', nullable: true })
  keysExtra!: Record<string, string> | null;

  /** Width, height and bytes of every derived variant (thumbnail, compressed, webp, avif). */
  @Column({ name: 'variants', type: 'jsonb', nullable: true })
  variants!: Record<string, { width: number; height: number; bytes: number }> | null;

  @Column({ name: 'downloaded_at', type: 'timestamptz', nullable: true })
  downloadedAt!: Date | null;

  @Column({ name: 'processed_at', type: 'timestamptz', nullable: true })
  processedAt!: Date | null;

  @Column({ name: 'settings_version', type: 'varchar', length: 32, nullable: true })
  settingsVersion!: string | null;

  /** 64-bit perceptual hash (SPEC §12), as PostgreSQL's signed bigint; the API shows 16 hex characters. */
  @Column({ name: 'phash', type: 'bigint', nullable: true })
  phash!: string | null;

  /** ThumbHash placeholder of the thumbnail, base64. */
  @Column({ name: 'thumbhash', type: 'varchar', length: 64, nullable: true })
  thumbhash!: string | null;

  /** `#rrggbb`. */
  @Column({ name: 'dominant_color', type: 'varchar', length: 7, nullable: true })
  dominantColor!: string | null;
}
