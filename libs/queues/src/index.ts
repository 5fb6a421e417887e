export * from './queue-names';
export * from './payloads';
export * from './job-ids';
export * from './connection';
export * from './producer';
export * from './image-jobs';
export * from './webhook-jobs';
export * from './worker-factory';
export { settlesWithin, succeedsWithin } from './timing';
