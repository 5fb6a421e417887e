import { defineE2eConfig } from '../../vitest.shared.mjs';

export default defineE2eConfig();
