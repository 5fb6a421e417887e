// The consistency check (SPEC §8): runConsistencyCheck and the names of its checks.
export * from './consistency-check';
export * from './consistency-check.types';
