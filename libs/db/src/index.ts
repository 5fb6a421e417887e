export * from './database-admin';
export * from './data-source';
export * from './entities';
export * from './migrator';
export { MIGRATIONS } from './migrations';
export * from './transaction';
export * from './errors';
export * from './cursor';
