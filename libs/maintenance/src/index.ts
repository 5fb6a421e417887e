export * from './maintenance.deps';
export * from './maintenance-run';
export * from './reconcile';
export * from './purge';
export * from './db-care';
export * from './maintenance.schedules';
export * from './maintenance.worker';
export * from './consistency';
