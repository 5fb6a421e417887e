export * from './queue-names';
export * from './payloads';
export * from './job-ids';
export * from './connection';
export * from './producer';
export * from './worker-factory';
export { settlesWithin, succeedsWithin } from './timing';
