// What the page reads from the API (docs/http-api.md). Fields marked "when present" come with other
// issues (fingerprints §12, the whole offer §16): the page shows them when the API sends them.
export interface SupplierSummary {
  id: string;
  externalId: string;
  name: string | null;
  isStub: boolean;
}

export interface ProductListItem {
  id: string;
  externalId: string;
  supplierId: string | null;
  title: string;
  categoryId: string | null;
  priceMin: number | null;
  priceMax: number | null;
  currency: string;
  status: string | null;
  syncStatus: string;
  salesCount: number | null;
  deletedAt: string | null;
  updatedAt: string;
  /** the main image's thumbnail and ThumbHash (§12) */
  thumbnailUrl: string | null;
  thumbhash: string | null;
  /** when present (§16) */
  titleTranslations?: Record<string, string> | null;
  offerStatus?: string | null;
  dropshipPrice?: number | null;
}

export interface ProductImage {
  id: string;
  kind: string;
  position: number;
  sourceUrl: string;
  downloadStatus: string;
  processStatus: string;
  error?: string;
  attempts: number;
  width?: number;
  height?: number;
  bytes?: { original?: number; thumbnail?: number; compressed?: number };
  urls: { original?: string; thumbnail?: string; compressed?: string; webp?: string; avif?: string };
  /** when present (§12) */
  thumbhash?: string | null;
  dominantColor?: string | null;
}

export interface Product extends ProductListItem {
  categoryPath: string[] | null;
  priceTiers: { minQuantity: number; price: number }[] | null;
  moq: number | null;
  unit: string | null;
  skus: { externalId?: string; attributes?: Record<string, string>; price?: number | null; stock?: number | null }[] | null;
  attributes: Record<string, string> | null;
  detailUrl: string | null;
  supplier: SupplierSummary | null;
  images: ProductImage[];
}

export interface Supplier {
  id: string;
  externalId: string;
  isStub: boolean;
  name: string | null;
  companyName: string | null;
  province: string | null;
  city: string | null;
  shopUrl: string | null;
  businessModel: string | null;
  yearsOnPlatform: number | null;
  badges: string[] | null;
  ratings: { overall: number | null };
  repurchaseRate: number | null;
  responseRate: number | null;
  productCount: number;
  deletedAt: string | null;
}

export interface HistoryPoint {
  at: string;
  priceMin: number | null;
  priceMax: number | null;
  status: string | null;
  skus: { externalId: string; price: number | null; stock: number | null }[];
}

export interface ChangeEvent {
  id: string;
  type: string;
  occurredAt: string;
  productId?: string;
  supplierId?: string;
  externalId: string;
  source?: string;
  data: Record<string, unknown>;
}

export interface SimilarItem {
  product: { id: string; externalId: string; title: string; priceMin: number | null; priceMax: number | null; supplier: { id: string; name: string | null } | null; thumbnailUrl: string | null };
  distance: number;
}

export interface Stats {
  suppliers: { live: number; stubs: number; deleted: number };
  products: { live: number; deleted: number; bySyncStatus: Record<string, number> };
  images: { live: number; deleted: number; byDownloadStatus: Record<string, number>; byProcessStatus: Record<string, number> };
  storageBytes: Record<string, number>;
  queues: Record<string, Record<string, number> | null>;
  queuesError?: string;
}

export interface SyncRecord {
  id: string;
  kind: string;
  source: string | null;
  status: string;
  startedAt: string;
  durationMs: number | null;
  counts: { received: number; created: number; updated: number; unchanged: number; failed: number };
}

export interface ConsistencyReport {
  id: string;
  fix: boolean;
  status: string;
  startedAt: string;
  summary: { info: number; warning: number; critical: number; fixed: number };
  findings: { check: string; severity: string; count: number; suggestedFix: string }[];
}

export interface Webhook {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  disabledReason: string | null;
}

export interface WebhookDelivery {
  id: string;
  eventId: string;
  type: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}
