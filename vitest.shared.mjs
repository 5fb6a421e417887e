// Shared vitest settings: integration tests talk to real PostgreSQL and Redis, so they get
// room for a slow CI machine; files run in parallel, each with its own database and prefix.
//
// Specs that start the apps as processes, or start, kill and restart servers of their own
// (`*.e2e.spec.ts`, `*.process.spec.ts`), are not part of a project's `test` target: they run in
// its `e2e` target, which `npm test` runs after every other target, one project and one file at a
// time, so they never fight the unit tests (or each other) for the two cores.
import { configDefaults, defineConfig } from 'vitest/config';

export const E2E_SPECS = ['src/**/*.e2e.spec.ts', 'src/**/*.process.spec.ts'];

export function defineProjectConfig(overrides = {}) {
  return defineConfig({
    test: {
      include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'],
      exclude: [...configDefaults.exclude, ...E2E_SPECS],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      pool: 'forks',
      maxWorkers: 2,
      ...overrides,
    },
  });
}

/** The `e2e` target's settings: the process and server specs, one file at a time. */
export function defineE2eConfig(overrides = {}) {
  return defineConfig({
    test: {
      include: E2E_SPECS,
      testTimeout: 240_000,
      hookTimeout: 120_000,
      pool: 'forks',
      maxWorkers: 1,
      fileParallelism: false,
      ...overrides,
    },
  });
}
