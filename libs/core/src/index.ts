export * from './app-error';
export * from './uuid';
export * from './ssrf-guard';
export * from './retry-after';
export * from './guarded-agents';
