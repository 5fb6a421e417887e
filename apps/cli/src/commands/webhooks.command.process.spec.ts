// The webhooks command as a user runs it (the binary, real PostgreSQL); its usage errors are
// webhooks.command.spec.ts's, in process.
import { describe, expect, it } from 'vitest';
import { useCliTestEnvironment } from './cli-test-environment.test-helper';

const cli = useCliTestEnvironment('cli-webhooks');
const { run } = cli;

describe('1688sync webhooks', () => {
  it('creates a subscription (printing its secret once), lists it and deletes it', async () => {
    const created = await run(['webhooks', 'create', 'https://hooks.example/in', '--events', 'product.price_changed,product.created', '--exclude-sources', 'monitor', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const sub = JSON.parse(created.stdout);
    expect(sub).toMatchObject({ url: 'https://hooks.example/in', events: ['product.price_changed', 'product.created'], excludeSources: ['monitor'], enabled: true });
    expect(sub.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const listed = await run(['webhooks', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(sub.id);
    expect(listed.stdout).not.toContain(sub.secret);

    const deleted = await run(['webhooks', 'delete', sub.id]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await cli.sql(`SELECT id FROM webhook_subscriptions WHERE deleted_at IS NULL`)).toEqual([]);
  });
});
