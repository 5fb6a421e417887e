export * from './ingest.schemas';
export * from './ingest.service';
export * from './product-ingest.worker';
export * from './upsert';
export * from './presenters';
