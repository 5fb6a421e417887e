export * from './upsert-rules';
export * from './supplier-upsert';
export * from './product-upsert';
export * from './image-list-diff';
export * from './change-record';
export * from './product-changes';
export * from './offer-rules';
