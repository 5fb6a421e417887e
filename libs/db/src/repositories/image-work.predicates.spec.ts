import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MigratedDatabase, createMigratedDatabase } from '../migrated-database.test-helper';
import { queryRows } from '../sql';
import { type WorkStage, claimableForDownload, claimableForProcessing, stuckClaim, unfinishedImage } from './image-work.predicates';

const WORK_INDEX: Record<WorkStage, string> = {
  download: 'product_images_download_work_idx',
  process: 'product_images_process_work_idx',
};
const STAGES: WorkStage[] = ['download', 'process'];

/** The WHERE clause of an index definition as PostgreSQL prints it (its own normal form). */
const whereOf = (indexdef: string) => indexdef.slice(indexdef.indexOf(' WHERE ') + 7);

describe('image work predicates', () => {
  let db: MigratedDatabase;
  beforeAll(async () => {
    db = await createMigratedDatabase('work_predicates');
  });
  afterAll(async () => {
    await db.drop();
  });

  /** The indexdef PostgreSQL prints for an index on product_images(id) with this predicate. */
  async function indexdefOf(predicate: string): Promise<string> {
    const runner = db.dataSource.createQueryRunner();
    await runner.startTransaction();
    try {
      await runner.query(`CREATE INDEX predicate_probe ON product_images (id) WHERE ${predicate}`);
      const [{ indexdef }] = await runner.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'predicate_probe'`);
      return indexdef;
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  }

  it.each(STAGES)("'unfinished %s' is the WHERE clause of the stage's partial work index in the migrations", async (stage) => {
    const [migrated] = await queryRows<{ indexdef: string }>(db.dataSource.manager, `SELECT indexdef FROM pg_indexes WHERE indexname = $1`, [WORK_INDEX[stage]]);
    expect(migrated, `${WORK_INDEX[stage]} exists`).toBeDefined();
    expect(whereOf(await indexdefOf(unfinishedImage(stage)))).toBe(whereOf(migrated.indexdef));
  });

  it.each(STAGES)("the planner walks the partial work index for a keyset page of 'unfinished %s'", async (stage) => {
    const plan = await db.dataSource.transaction(async (tx) => {
      await tx.query('SET LOCAL enable_seqscan = off');
      const rows: { 'QUERY PLAN': string }[] = await tx.query(
        `EXPLAIN SELECT id FROM product_images WHERE ${unfinishedImage(stage)} AND id > '00000000-0000-0000-0000-000000000000'::uuid ORDER BY id LIMIT 100`,
      );
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain(WORK_INDEX[stage]);
  });

  it('claims and stuck claims select only unfinished images (beyond reprocessing under new settings)', async () => {
    // Every combination of the columns the predicates read, as a stand-in for product_images.
    const rows = await queryRows<{ d: string; p: string; deleted: boolean; lease: string; claimDownload: boolean; claimProcess: boolean; stuckDownload: boolean; stuckProcess: boolean; unfinishedDownload: boolean; unfinishedProcess: boolean; otherSettings: boolean }>(
      db.dataSource.manager,
      `SELECT d, p, deleted, lease,
              coalesce(${claimableForDownload()}, false) AS "claimDownload",
              coalesce(${claimableForProcessing("'v2'")}, false) AS "claimProcess",
              coalesce(${stuckClaim('download')}, false) AS "stuckDownload",
              coalesce(${stuckClaim('process')}, false) AS "stuckProcess",
              coalesce(${unfinishedImage('download')}, false) AS "unfinishedDownload",
              coalesce(${unfinishedImage('process')}, false) AS "unfinishedProcess",
              (process_status = 'processed' AND settings_version IS DISTINCT FROM 'v2') AS "otherSettings"
       FROM (
         SELECT d, p, deleted, lease,
                d AS download_status, p AS process_status,
                CASE WHEN deleted THEN now() END AS deleted_at,
                CASE lease WHEN 'live' THEN now() + interval '1 hour' WHEN 'expired' THEN now() - interval '1 hour' END AS claimed_until,
                'v1'::text AS settings_version
         FROM unnest(ARRAY['pending', 'downloading', 'downloaded', 'failed', 'skipped']) d,
              unnest(ARRAY['pending', 'processing', 'processed', 'failed', 'skipped']) p,
              unnest(ARRAY[false, true]) deleted,
              unnest(ARRAY['none', 'live', 'expired']) lease
       ) product_images`,
    );
    expect(rows).toHaveLength(5 * 5 * 2 * 3);
    for (const r of rows) {
      const label = JSON.stringify({ d: r.d, p: r.p, deleted: r.deleted, lease: r.lease });
      if (r.claimDownload || r.stuckDownload) expect(r.unfinishedDownload, label).toBe(true);
      if (r.stuckProcess || (r.claimProcess && !r.otherSettings)) expect(r.unfinishedProcess, label).toBe(true);
      // A claim held under a live lease is never claimable, and a stuck claim always is.
      if (r.lease === 'live' && (r.d === 'downloading')) expect(r.claimDownload, label).toBe(false);
      if (r.stuckDownload) expect(r.claimDownload, label).toBe(true);
      if (r.stuckProcess) expect(r.claimProcess, label).toBe(true);
    }
    expect(rows.filter((r) => r.claimDownload).length).toBeGreaterThan(0);
    expect(rows.filter((r) => r.stuckProcess).length).toBeGreaterThan(0);
  });
});
