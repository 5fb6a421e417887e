import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { InvalidCursorError } from '../errors';
import { DISABLED_BY_OPERATOR, WebhookSubscriptionRepository } from './webhook-subscription.repository';

describe('WebhookSubscriptionRepository', () => {
  let db: MigratedDatabase;
  let subs: WebhookSubscriptionRepository;
  beforeAll(async () => {
    db = await createMigratedDatabase('webhook-subscriptions');
    subs = new WebhookSubscriptionRepository(db.dataSource.manager);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const create = (n: number) => subs.create({ url: `https://hooks.example/${n}`, events: ['*'], secret: `secret-${n}` });

  it('lists live subscriptions oldest first in keyset pages, leaving deleted ones out', async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await create(i));
    expect(await subs.softDelete(made[1].id)).toBe(true);
    expect(await subs.softDelete(made[1].id)).toBe(false);
    const first = await subs.list({ limit: 2 });
    const second = await subs.list({ limit: 2, cursor: first.nextCursor! });
    expect([...first.items, ...second.items].map((s) => s.id)).toEqual([made[0], made[2], made[3], made[4]].map((s) => s.id));
    expect(second.nextCursor).toBeNull();
    expect(await subs.get(made[1].id)).toBeNull();
    await expect(subs.list({ cursor: `${first.nextCursor}x` })).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it('signs with the new secret and the previous one until the previous expires', async () => {
    const s = await create(10);
    expect((await subs.target(s.id))!.secrets).toEqual(['secret-10']);
    await subs.rotateSecret(s.id, 'secret-10b');
    expect((await subs.target(s.id))!.secrets).toEqual(['secret-10b', 'secret-10']);
    await subs.rotateSecret(s.id, 'secret-10c', 0);
    expect((await subs.target(s.id))!.secrets).toEqual(['secret-10c']);
  });

  it('keeps absent fields, clears description on null, and re-enabling clears the reason and the failing clock', async () => {
    const s = await subs.create({ url: 'https://hooks.example/p', events: ['product.created'], secret: 'x', description: 'mine', excludeSources: ['crawler'] });
    const off = await subs.update(s.id, { enabled: false });
    expect(off).toMatchObject({ enabled: false, disabledReason: DISABLED_BY_OPERATOR, description: 'mine', excludeSources: ['crawler'], events: ['product.created'] });
    const on = await subs.update(s.id, { enabled: true, description: null, events: ['*'] });
    expect(on).toMatchObject({ enabled: true, disabledReason: null, failingSince: null, description: null, events: ['*'], url: 'https://hooks.example/p' });
    expect(await subs.update('00000000-0000-4000-8000-000000000000', { enabled: true })).toBeNull();
  });

  it('records failing since the first failure, clears it on a success, and disables after the threshold', async () => {
    const s = await create(20);
    expect(await subs.recordHealth(s.id, { delivered: false, disableAfterMs: 60_000 })).toBeNull();
    const failing = (await subs.get(s.id))!.failingSince;
    expect(failing).not.toBeNull();
    // A later failure keeps the first one's time.
    await subs.recordHealth(s.id, { delivered: false, disableAfterMs: 60_000 });
    expect((await subs.get(s.id))!.failingSince).toBe(failing);
    await subs.recordHealth(s.id, { delivered: true, disableAfterMs: 60_000 });
    expect((await subs.get(s.id))!.failingSince).toBeNull();
    // Failing for longer than the threshold: disabled, with a reason that says since when and what to do.
    await subs.recordHealth(s.id, { delivered: false, disableAfterMs: 0 });
    const reason = await subs.recordHealth(s.id, { delivered: false, disableAfterMs: 0 });
    expect(reason).toMatch(/^every delivery has failed since \d{4}-\d\d-\d\dT.*PATCH \{"enabled": true\}/);
    expect(await subs.get(s.id)).toMatchObject({ enabled: false, disabledReason: reason });
  });
});
