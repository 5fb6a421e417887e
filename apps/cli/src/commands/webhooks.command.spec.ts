// The webhooks command's usage errors, in process: refused before any connection is made.
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli';
import { createOutput } from '../output';

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, createOutput({ isTTY: false, write: (c: string) => (stdout += c) }, { isTTY: false, write: (c: string) => (stderr += c) }));
  return { code, stdout, stderr };
}

describe('1688sync webhooks, wrong usage (exit 2)', () => {
  it('refuses an unknown event type, naming it', async () => {
    const { code, stderr } = await cli('webhooks', 'create', 'https://hooks.example/in', '--events', 'product.created,product.exploded');
    expect(code).toBe(2);
    expect(stderr).toContain('unknown event type(s) "product.exploded"');
  });

  it('refuses a URL on a literal loopback or private address, or not http(s)', async () => {
    for (const [url, said] of [['http://127.0.0.1:9/in', 'url: 127.0.0.1 is a loopback'], ['ftp://hooks.example/in', 'url: must be http or https']]) {
      const { code, stderr } = await cli('webhooks', 'create', url, '--events', '*');
      expect(code, url).toBe(2);
      expect(stderr).toContain(said);
    }
  });

  it('refuses options a subcommand does not take, a missing id and an unknown subcommand', async () => {
    expect((await cli('webhooks', 'list', '--events', '*')).stderr).toContain('webhooks list does not take --events');
    expect((await cli('webhooks', 'deliveries', 'not-an-id')).stderr).toContain('webhooks deliveries takes one subscription id');
    expect((await cli('webhooks', 'deliveries', '6c1f1e8e-5b7a-4c59-9a53-0d5b2c1b7a10', '--status', 'lost')).stderr).toContain('--status must be one of pending, delivered, failed');
    const unknown = await cli('webhooks', 'ship');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown webhooks command "ship"');
  });
});
