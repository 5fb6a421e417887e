// Runs the real `1688sync` binary (apps/cli/bin/1688sync.cjs, what `npx 1688sync` runs) as a user
// would, with the given environment on top of the test process's own (PORT left out).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { childEnvironment } from '@1688sync/config';
import { REPO_ROOT } from '@1688sync/testing';

export const BIN = path.join(REPO_ROOT, 'apps/cli/bin/1688sync.cjs');

export interface BinaryRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Resolves with the exit code and both streams once the command exits. */
export function runBinary(args: string[], env: Record<string, string>): Promise<BinaryRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: childEnvironment({ ...env, PORT: undefined }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
