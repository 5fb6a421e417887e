import { Backup } from './backup.entity';
import { ConsistencyReport } from './consistency-report.entity';
import { Product } from './product.entity';
import { ProductImage } from './product-image.entity';
import { Supplier } from './supplier.entity';
import { SyncRecord } from './sync-record.entity';

export * from './base.entity';
export * from './supplier.entity';
export * from './product.entity';
export * from './product-image.entity';
export * from './sync-record.entity';
export * from './consistency-report.entity';
export * from './backup.entity';

/** Every entity of the schema, for the DataSource. */
export const ENTITIES = [Supplier, Product, ProductImage, SyncRecord, ConsistencyReport, Backup];
