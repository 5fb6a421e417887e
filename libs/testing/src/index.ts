export * from './test-database';
export * from './test-queues';
export * from './wait-for';
export * from './app-process';
export * from './fixtures';
export * from './s3-server';
export * from './photo-server';
export * from './private-servers';
