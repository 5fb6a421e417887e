export * from './pool';
export * from './database-admin';
