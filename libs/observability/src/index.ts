export * from './logger';
export * from './metrics';
export * from './readiness';
export * from './health-server';
export * from './shutdown';
export * from './dependency-errors';
