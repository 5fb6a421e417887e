// Issue 8, "done when": a full round trip. Products of the sample catalogue are ingested, their
// real photographs downloaded and processed by the real workers (sharp), backed up (full, then
// incremental after more products arrive), every row and file deleted, and restored: rows —
// compared column by column through an md5 of each table — and file hashes come back identical.
// The workers keep running throughout: the restore pauses their queues.
import path from 'node:path';
import { queryRows, transaction } from '@1688sync/db';
import { type ProductPatch, type SupplierPatch, upsertProducts, upsertSuppliers } from '@1688sync/ingest';
import { loadCatalogue, waitFor } from '@1688sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storedKeys } from '../maintenance-env.test-helper';
import { type PipelineEnv, createPipelineEnv } from '../pipeline.test-helper';
import { reconcile } from '../reconcile';
import { createBackup } from './backup.service';
import { fileDigests, tableDigests } from './backup.test-helper';
import { archiveKeys } from './file-archive';
import { type RestoreResult, restoreBackup } from './restore.service';

let env: PipelineEnv;
let base: string;

beforeAll(async () => {
  env = await createPipelineEnv('restore_e2e');
  base = env.photos.base;
  env.startWorkers();
});
afterAll(async () => {
  await env?.close();
});

/** Upserts catalogue products (and their suppliers), queues their downloads, waits until every image is done. */
async function ingestAndProcess(products: Record<string, unknown>[], suppliers: Record<string, unknown>[]): Promise<void> {
  await transaction(env.dataSource, (tx) => upsertSuppliers(tx, suppliers as unknown as SupplierPatch[]));
  await transaction(env.dataSource, (tx) => upsertProducts(tx, products as unknown as ProductPatch[]));
  await reconcile(env.deps);
  const unfinished = () =>
    queryRows<{ id: string; download_status: string; process_status: string; last_error: string | null }>(
      env.dataSource.manager,
      `SELECT id, download_status, process_status, last_error FROM product_images
       WHERE download_status NOT IN ('downloaded', 'skipped', 'failed') OR (download_status = 'downloaded' AND process_status NOT IN ('processed', 'failed'))`,
    );
  await waitFor('every image downloaded and processed', async () => (await unfinished()).length === 0, { timeoutMs: 60_000, intervalMs: 200 }).catch(async (err) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(await unfinished())}`);
  });
}

/** Every row and every file gone, as after losing the disk (the catalogue of backups stays). */
async function deleteEverything(): Promise<void> {
  await queryRows(env.dataSource.manager, `TRUNCATE product_group_members, product_groups, product_images, products, suppliers, sync_records, consistency_reports`);
  for (const key of await storedKeys(env.storage)) await env.storage.delete(key);
}

describe('backup and restore, end to end', () => {
  it('restores rows and files identical to what was backed up, from a full and from an incremental backup', async () => {
    const catalogue = loadCatalogue(base);
    const pick = (ids: string[]) => catalogue.products.filter((p) => ids.includes(p.externalId as string));
    const first = pick(['600000040148', '600000143352']);
    const later = pick(['600000207355']);
    const suppliers = catalogue.suppliers.filter((s) => [...first, ...later].some((p) => p.supplierExternalId === s.externalId));
    await ingestAndProcess(first, suppliers);
    const [{ processed }] = await queryRows<{ processed: number }>(env.dataSource.manager, `SELECT count(*)::int AS processed FROM product_images WHERE process_status = 'processed'`);
    expect(processed).toBeGreaterThanOrEqual(8);

    const full = await createBackup(env.deps, { kind: 'full', source: 'e2e' });
    const atFull = { tables: await tableDigests(env.dataSource), files: await fileDigests(env.storage) };
    expect(Object.keys(atFull.files).length).toBeGreaterThanOrEqual(processed * 3);

    // More products arrive and are processed; the incremental backup holds only their files.
    await ingestAndProcess(later, suppliers);
    const incremental = await createBackup(env.deps, { kind: 'full', incremental: true, source: 'e2e' });
    const atIncremental = { tables: await tableDigests(env.dataSource), files: await fileDigests(env.storage) };
    const newKeys = Object.keys(atIncremental.files).filter((k) => !(k in atFull.files)).sort();
    expect(newKeys.length).toBeGreaterThan(0);
    expect(await archiveKeys(path.join(env.backupDir, incremental.name, 'files.tar.gz'))).toEqual(newKeys);

    // Lose everything; restore the incremental backup (its files come from both archives).
    await deleteEverything();
    const fromIncremental = (await restoreBackup(env.deps, incremental.id, { yes: true })) as RestoreResult;
    expect(fromIncremental).toMatchObject({ verified: true, files: Object.keys(atIncremental.files).length, reconciled: { queued: 0 } });
    expect(await tableDigests(env.dataSource, { sync_records: `id <> '${fromIncremental.reconciled!.syncRecordId}'` })).toEqual(atIncremental.tables);
    expect(await fileDigests(env.storage)).toEqual(atIncremental.files);

    // And back to the full backup: the later product and its files are gone again.
    await deleteEverything();
    const fromFull = (await restoreBackup(env.deps, full.id, { yes: true })) as RestoreResult;
    expect(fromFull).toMatchObject({ verified: true, files: Object.keys(atFull.files).length });
    expect(await tableDigests(env.dataSource, { sync_records: `id <> '${fromFull.reconciled!.syncRecordId}'` })).toEqual(atFull.tables);
    expect(await fileDigests(env.storage)).toEqual(atFull.files);

    // The catalogue still knows every backup, the safety backups of both restores included.
    const rows = await queryRows<{ purpose: string; status: string }>(env.dataSource.manager, `SELECT purpose, status FROM backups ORDER BY started_at`);
    expect(rows).toEqual([
      { purpose: 'manual', status: 'succeeded' },
      { purpose: 'manual', status: 'succeeded' },
      { purpose: 'safety', status: 'succeeded' },
      { purpose: 'safety', status: 'succeeded' },
    ]);
  }, 120_000);
});
