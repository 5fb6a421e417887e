// Shared vitest settings: integration tests talk to real PostgreSQL and Redis, so they get
// room for a slow CI machine; files run in parallel, each with its own database and prefix.
import { defineConfig } from 'vitest/config';

export function defineProjectConfig(overrides = {}) {
  return defineConfig({
    test: {
      include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      pool: 'forks',
      maxWorkers: 2,
      ...overrides,
    },
  });
}
