import type { UserConfig } from 'vitest/config';

export const E2E_SPECS: string[];
export function defineProjectConfig(overrides?: NonNullable<UserConfig['test']>): UserConfig;
export function defineE2eConfig(overrides?: NonNullable<UserConfig['test']>): UserConfig;
