// A 1688 member (shop). external_id is its memberId.
import { Column, Entity, Index } from 'typeorm';
import { BaseEntity, numericTransformer } from './base.entity';

@Entity({ name: 'suppliers' })
@Index('suppliers_updated_at_id_idx', ['updatedAt', 'id'])
@Index('suppliers_identities_idx', { synchronize: false })
export class Supplier extends BaseEntity {
  @Index('suppliers_external_id_key', { unique: true })
  @Column({ name: 'external_id', type: 'varchar', length: 128 })
  externalId!: string;

  /** Created from a product's supplierExternalId before the supplier itself arrived. */
  @Column({ name: 'is_stub', type: 'boolean', default: false })
  isStub!: boolean;

  @Column({ name: 'login_id', type: 'varchar', length: 256, nullable: true })
  loginId!: string | null;

  @Column({ name: 'name', type: 'varchar', length: 512, nullable: true })
  name!: string | null;

  @Column({ name: 'company_name', type: 'varchar', length: 512, nullable: true })
  companyName!: string | null;

  @Column({ name: 'province', type: 'varchar', length: 128, nullable: true })
  province!: string | null;

  @Column({ name: 'city', type: 'varchar', length: 128, nullable: true })
  city!: string | null;

  @Column({ name: 'address', type: 'varchar', length: 1024, nullable: true })
  address!: string | null;

  @Column({ name: 'contact_name', type: 'varchar', length: 256, nullable: true })
  contactName!: string | null;

  @Column({ name: 'phone', type: 'varchar', length: 64, nullable: true })
  phone!: string | null;

  @Column({ name: 'mobile', type: 'varchar', length: 64, nullable: true })
  mobile!: string | null;

  @Column({ name: 'email', type: 'varchar', length: 320, nullable: true })
  email!: string | null;

  @Column({ name: 'shop_url', type: 'varchar', length: 2048, nullable: true })
  shopUrl!: string | null;

  @Column({ name: 'business_model', type: 'varchar', length: 128, nullable: true })
  businessModel!: string | null;

  /** 诚信通 years. */
  @Column({ name: 'years_on_platform', type: 'integer', nullable: true })
  yearsOnPlatform!: number | null;

  /** e.g. 超级工厂 (super factory), 实力商家 (power merchant). */
  @Column({ name: 'badges', type: 'jsonb', nullable: true })
  badges!: string[] | null;

  @Column({ name: 'rating_overall', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  ratingOverall!: number | null;

  @Column({ name: 'rating_quality', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  ratingQuality!: number | null;

  @Column({ name: 'rating_response', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  ratingResponse!: number | null;

  @Column({ name: 'rating_delivery', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  ratingDelivery!: number | null;

  @Column({ name: 'rating_after_sales', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  ratingAfterSales!: number | null;

  @Column({ name: 'repurchase_rate', type: 'numeric', precision: 5, scale: 4, nullable: true, transformer: numericTransformer })
  repurchaseRate!: number | null;

  @Column({ name: 'response_rate', type: 'numeric', precision: 5, scale: 4, nullable: true, transformer: numericTransformer })
  responseRate!: number | null;

  // ---- Seller quality (SPEC §16; migration 1764500000000-offer) ----

  /** snake_case codes (super_factory, powerful_merchant, tp_member, …); `badges` stays free text. */
  @Column({ name: 'identities', type: 'jsonb', nullable: true })
  identities!: string[] | null;

  /** Service scores, 0..5. */
  @Column({ name: 'service_composite', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  compositeService!: number | null;

  @Column({ name: 'service_logistics', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  logistics!: number | null;

  @Column({ name: 'service_dispute', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  dispute!: number | null;

  @Column({ name: 'service_offer_experience', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  offerExperience!: number | null;

  @Column({ name: 'service_consulting', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  consulting!: number | null;

  @Column({ name: 'service_after_sales', type: 'numeric', precision: 3, scale: 2, nullable: true, transformer: numericTransformer })
  afterSales!: number | null;

  /** Share of orders picked up within 48 h, 0..1. */
  @Column({ name: 'pickup_within_48h_rate', type: 'numeric', precision: 5, scale: 4, nullable: true, transformer: numericTransformer })
  pickupWithin48hRate!: number | null;

  /** Share of orders refunded for quality within 30 days, 0..1. */
  @Column({ name: 'quality_refund_rate_30d', type: 'numeric', precision: 5, scale: 4, nullable: true, transformer: numericTransformer })
  qualityRefundRate30d!: number | null;

  @Column({ name: 'factory_inspected', type: 'boolean', nullable: true })
  factoryInspected!: boolean | null;

  /** Live (not soft-deleted) products of this supplier; kept correct by the repositories. */
  @Column({ name: 'product_count', type: 'integer', default: 0 })
  productCount!: number;

  @Column({ name: 'raw', type: 'jsonb', nullable: true })
  raw!: unknown;

  @Column({ name: 'content_hash', type: 'varchar', length: 64, nullable: true })
  contentHash!: string | null;

  @Column({ name: 'last_synced_at', type: 'timestamptz', nullable: true })
  lastSyncedAt!: Date | null;
}
