import { defineProjectConfig } from '../../vitest.shared.mjs';

export default defineProjectConfig();
