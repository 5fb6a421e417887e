import { InvalidInputError, SupplierRepository, transaction } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '@1688sync/db/migrated-database.test-helper';
import { type SupplierPatch, upsertSuppliers } from './supplier-upsert';

const jiaju: SupplierPatch = {
  externalId: 'b2b-2208873512345',
  loginId: 'yiwu_jiaju',
  name: '义乌市佳居日用品有限公司',
  companyName: '义乌市佳居日用品有限公司',
  province: '浙江',
  city: '金华',
  contactName: '王丽',
  mobile: '13805790000',
  businessModel: '生产加工',
  yearsOnPlatform: 9,
  badges: ['实力商家', '超级工厂'],
  ratings: { overall: 4.7, quality: 4.8, response: 4.6, delivery: 4.5, afterSales: 4.4 },
  repurchaseRate: 0.42,
  responseRate: 0.97,
  shopUrl: 'https://jiaju.1688.com',
};

describe('upsertSuppliers', () => {
  let db: MigratedDatabase;
  const upsert = (patches: SupplierPatch[]) => transaction(db.dataSource, (tx) => upsertSuppliers(tx, patches));
  const row = async (externalId: string) => (await db.dataSource.query('SELECT * FROM suppliers WHERE external_id = $1', [externalId]))[0];

  beforeAll(async () => {
    db = await createMigratedDatabase('suppliers');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('creates, then reports unchanged and writes nothing when the same input comes again', async () => {
    const first = await upsert([jiaju]);
    expect(first.items).toEqual([{ index: 0, externalId: jiaju.externalId, id: expect.any(String), result: 'created' }]);
    const stored = await row(jiaju.externalId);
    expect(stored).toMatchObject({ name: jiaju.name, rating_overall: '4.70', repurchase_rate: '0.4200', badges: ['实力商家', '超级工厂'], is_stub: false, version: 1 });
    const second = await upsert([{ ...jiaju }]);
    expect(second.items[0]).toMatchObject({ result: 'unchanged', id: first.items[0].id });
    const after = await row(jiaju.externalId);
    expect(after.updated_at).toEqual(stored.updated_at);
    expect(after.version).toBe(1);
  });

  it('merges: an absent field keeps its value, null clears it, ratings key by key', async () => {
    const result = await upsert([{ externalId: jiaju.externalId, city: null, ratings: { overall: 4.9 }, yearsOnPlatform: 10 }]);
    expect(result.items[0].result).toBe('updated');
    const stored = await row(jiaju.externalId);
    expect(stored).toMatchObject({ name: jiaju.name, city: null, province: '浙江', rating_overall: '4.90', rating_quality: '4.80', years_on_platform: 10, version: 2 });
    await upsert([{ externalId: jiaju.externalId, ratings: null }]);
    expect(await row(jiaju.externalId)).toMatchObject({ rating_overall: null, rating_after_sales: null, name: jiaju.name });
  });

  it('treats values that round to what is stored as unchanged', async () => {
    await upsert([{ externalId: 'round-1', name: 'r', repurchaseRate: 0.12344 }]);
    expect((await upsert([{ externalId: 'round-1', name: 'r', repurchaseRate: 0.12341 }])).items[0].result).toBe('unchanged');
  });

  it('merges duplicate external ids inside one batch in order: the last one wins', async () => {
    const result = await upsert([
      { externalId: 'dup-1', name: '第一', city: '杭州' },
      { externalId: 'dup-2', name: 'other' },
      { externalId: 'dup-1', name: '第二' },
    ]);
    expect(result.items.map((i) => [i.index, i.result])).toEqual([[0, 'created'], [1, 'created'], [2, 'created']]);
    expect(result.items[0].id).toBe(result.items[2].id);
    expect(await row('dup-1')).toMatchObject({ name: '第二', city: '杭州' });
  });

  it('upserts batches larger than one statement could bind (65,535 parameters)', async () => {
    const many = Array.from({ length: 3500 }, (_, i) => ({ externalId: `bulk-${i}`, name: `供应商 ${i}`, city: '深圳', ratings: { overall: 4 } }));
    const result = await upsert(many);
    expect(result.items.filter((i) => i.result === 'created')).toHaveLength(3500);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM suppliers WHERE external_id LIKE 'bulk-%'`);
    expect(n).toBe(3500);
    const again = await upsert(many);
    expect(again.items.every((i) => i.result === 'unchanged')).toBe(true);
  });

  it('fails only the item with a NUL character, naming the field', async () => {
    const result = await upsert([{ externalId: 'nul-ok', name: 'fine' }, { externalId: 'nul-bad', name: 'bad\u0000name' }]);
    expect(result.items[0].result).toBe('created');
    expect(result.items[1]).toMatchObject({ result: 'failed', error: 'suppliers[1].name: must not contain the NUL character (\\u0000)' });
    expect(await row('nul-bad')).toBeUndefined();
  });

  it('creates stubs for unknown external ids and completes them when the supplier arrives', async () => {
    const { ids, created } = await transaction(db.dataSource, (tx) => new SupplierRepository(tx).resolveOrCreateStubs(['stub-1', jiaju.externalId, 'stub-1']));
    expect(ids.size).toBe(2);
    expect(created).toEqual([{ id: ids.get('stub-1'), externalId: 'stub-1' }]);
    expect(await row('stub-1')).toMatchObject({ is_stub: true, name: null });
    const result = await upsert([{ externalId: 'stub-1', name: '后来的店' }]);
    expect(result.items[0]).toMatchObject({ result: 'updated', id: ids.get('stub-1') });
    expect(await row('stub-1')).toMatchObject({ is_stub: false, name: '后来的店' });
  });

  it('converges when concurrent batches insert the same new suppliers', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => ({ externalId: `race-${i}`, name: `店 ${i}` }));
    const results = await Promise.all([upsert(batch), upsert([...batch].reverse()), upsert(batch)]);
    const created = results.flatMap((r) => r.items).filter((i) => i.result === 'created');
    expect(created).toHaveLength(50);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM suppliers WHERE external_id LIKE 'race-%'`);
    expect(n).toBe(50);
  });

  it('throws InvalidInputError from the NUL guard for direct callers', () => {
    expect(new InvalidInputError('name', 'x').message).toBe('name: x');
  });
});
