export * from './ingest.schemas';
export * from './ingest.service';
export * from './upsert';
