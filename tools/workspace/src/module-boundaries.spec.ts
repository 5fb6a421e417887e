// `npm run lint` must fail on a wrong-way import (DESIGN.md: app → feature → data → util).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../../..');

async function lintAs(file: string, code: string) {
  const eslint = new ESLint({ cwd: ROOT });
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return result.messages;
}

describe('module boundaries', () => {
  beforeAll(() => {
    // The rule reads Nx's cached project graph and is skipped without one (a fresh clone).
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/nx/dist/bin/nx.js'), 'show', 'projects'], { cwd: ROOT, stdio: 'ignore' });
  });

  it('refuses a util library importing a data library', async () => {
    const messages = await lintAs('libs/config/src/wrong-way.ts', "import { QueueName } from '@1688sync/queues';\nexport const q = QueueName;\n");
    expect(messages.map((m) => m.ruleId)).toContain('@nx/enforce-module-boundaries');
  });

  it('refuses a data library importing a feature library', async () => {
    const messages = await lintAs('libs/queues/src/wrong-way.ts', "import { bootstrapApp } from '@1688sync/runtime';\nexport const b = bootstrapApp;\n");
    expect(messages.map((m) => m.ruleId)).toContain('@nx/enforce-module-boundaries');
  });

  it('refuses an app importing another app', async () => {
    const messages = await lintAs('apps/image-download-worker/src/wrong-way.ts', "import { buildApiServer } from '../../ingest-api/src/server';\nexport const b = buildApiServer;\n");
    expect(messages.map((m) => m.ruleId)).toContain('@nx/enforce-module-boundaries');
  });

  it('refuses the catalogue page (it runs in a browser) importing a library of ours', async () => {
    const messages = await lintAs('apps/web/src/wrong-way.tsx', "import { loadConfig } from '@1688sync/config';\nexport const c = loadConfig;\n");
    expect(messages.map((m) => m.ruleId)).toContain('@nx/enforce-module-boundaries');
  });

  it('allows the arrows that point the right way', async () => {
    const messages = await lintAs('apps/image-download-worker/src/right-way.ts', "import { QueueName } from '@1688sync/queues';\nimport { loadConfig } from '@1688sync/config';\nexport const x = [QueueName, loadConfig];\n");
    expect(messages.filter((m) => m.ruleId === '@nx/enforce-module-boundaries')).toEqual([]);
  });

  it('keeps process.env inside the config library', async () => {
    const messages = await lintAs('libs/queues/src/env.ts', 'export const url = process.env.REDIS_URL;\n');
    expect(messages.map((m) => m.ruleId)).toContain('no-restricted-properties');
  });
});
