// The receivers in the README ("Reacting to changes"), run as they are printed — the Node one with
// node, the Python one with python3 — and sent real deliveries by this library's sender: a
// receiver must take a signed delivery (also one signed during a rotation, when it knows only the
// old secret) and refuse a tampered body, a wrong secret and a stale timestamp.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { childEnvironment } from '@1688sync/config';
import { REPO_ROOT, closedPort, waitFor } from '@1688sync/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { webhookRequest } from './webhook-request';
import { closeWebhookAgents, sendWebhook } from './webhook-sender';

/** The code block that follows `<!-- receiver: <name> -->` in the README. */
async function receiverSnippet(name: string): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const match = readme.match(new RegExp(`<!-- receiver: ${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``));
  if (!match) throw new Error(`README.md has no block after <!-- receiver: ${name} -->`);
  return match[1];
}

const hasPython = (() => {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const envelope = { id: '0b9f4c1e-2f43-4a8e-9d55-1d7c3f2b9a01', type: 'product.price_changed', occurredAt: new Date().toISOString(), productId: 'c2a7e0e4-1b6f-4f0c-8e3b-6d2b9b1c4a55', externalId: '600000040148', data: { before: { priceMin: 12.5 }, after: { priceMin: 11 }, percent: -12, note: '价格 ✓' } };

describe.each([
  { name: 'node', file: 'receiver.mjs', command: process.execPath, skip: false },
  { name: 'python', file: 'receiver.py', command: 'python3', skip: !hasPython },
])('the $name receiver of the README', ({ name, file, command, skip }) => {
  let dir: string;
  let child: ChildProcess | undefined;
  let output = '';
  afterAll(async () => {
    child?.kill();
    closeWebhookAgents();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.skipIf(skip)('takes signed deliveries (and rotations) and refuses tampered, wrongly signed and stale ones', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), `receiver-${name}-`));
    await writeFile(path.join(dir, file), await receiverSnippet(name));
    const port = await closedPort();
    child = spawn(command, [path.join(dir, file)], { env: childEnvironment({ PORT: String(port), WEBHOOK_SECRETS: 'old-secret' }), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const url = `http://127.0.0.1:${port}/hooks/1688`;
    const send = (request: ReturnType<typeof webhookRequest>) => sendWebhook(request, { timeoutMs: 5000, allowHosts: [`127.0.0.1:${port}`] });
    await waitFor(`the ${name} receiver to listen (${output})`, async () => (await send(webhookRequest(url, envelope, ['old-secret']))).statusCode !== null, { timeoutMs: 15_000, intervalMs: 100 });

    expect((await send(webhookRequest(url, envelope, ['old-secret']))).statusCode).toBe(204);
    // During a rotation: two signatures; the receiver knows only the old secret.
    expect((await send(webhookRequest(url, envelope, ['new-secret', 'old-secret']))).statusCode).toBe(204);

    const tampered = webhookRequest(url, envelope, ['old-secret']);
    tampered.body = tampered.body.replace('"priceMin":11', '"priceMin":1');
    expect((await send(tampered)).statusCode).toBe(401);
    expect((await send(webhookRequest(url, envelope, ['another-secret']))).statusCode).toBe(401);
    expect((await send(webhookRequest(url, envelope, ['old-secret'], Date.now() - 6 * 60_000))).statusCode).toBe(401);
    const unsigned = webhookRequest(url, envelope, ['old-secret']);
    delete unsigned.headers['x-1688sync-signature'];
    expect((await send(unsigned)).statusCode).toBe(401);
    await waitFor('the receiver to log the event', async () => output.includes(`product.price_changed ${envelope.id}`));
  });
});
