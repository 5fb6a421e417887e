// The consistency check (docs/operations.md): runConsistencyCheck and the names of its checks.
export * from './consistency-check';
export * from './consistency-check.types';
