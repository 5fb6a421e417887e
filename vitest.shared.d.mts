import type { UserConfig } from 'vitest/config';

export function defineProjectConfig(overrides?: NonNullable<UserConfig['test']>): UserConfig;
