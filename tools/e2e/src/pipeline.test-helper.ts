// The whole pipeline as its users run it, for the end-to-end specs that kill and restart things:
// the real apps as processes (`startAppProcess`), a local stand-in for 1688's CDN, a storage dir,
// and read-only looks at the database, the queues and the files.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { type AppProcess, type PhotoServer, startAppProcess, waitFor } from '@1688sync/testing';
import pg from 'pg';

export type PipelineApp = 'ingest-api' | 'image-download-worker' | 'image-processing-worker' | 'maintenance-worker';

/** Starts an app as a process and waits until its /readyz answers 200. */
export async function startReadyApp(app: PipelineApp, env: Record<string, string>, timeoutMs = 60_000): Promise<AppProcess> {
  const proc = await startAppProcess(app, env);
  try {
    await waitFor(`${app} to be ready`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`${app} exited (${proc.child.exitCode}):\n${proc.output().slice(-3000)}`);
      return (await readyz(proc)) === 200;
    }, { timeoutMs, intervalMs: 100 });
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  return proc;
}

/** The status of GET /readyz, or 0 when the app does not answer. */
export async function readyz(proc: AppProcess): Promise<number> {
  try {
    const res = await fetch(`${proc.url}/readyz`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** kill -9: no shutdown hook runs, no claim is released, no job is moved back. */
export async function killHard(proc: AppProcess): Promise<void> {
  await proc.stop('SIGKILL');
}

/** `count` products of `imagesEach` images, every image a distinct URL on the photo server. */
export function catalogue(photos: PhotoServer, count: number, imagesEach: number, tag: string) {
  const names = ['retina-1600w.jpg', 'hubble_deep_field.jpg', 'astronaut.png', 'retina.jpg', 'hubble-detail-750w.png', 'chelsea-800x800.jpg', 'coffee-800x800.webp'];
  return Array.from({ length: count }, (_, p) => ({
    externalId: `${tag}-${p}`,
    title: `连衣裙 ${tag} ${p}`,
    supplier: { externalId: `${tag}-shop`, name: '义乌小商品' },
    images: Array.from({ length: imagesEach }, (_, i) => `${photos.base}/${tag}/p${p}/i${i}/${names[(p + i) % names.length]}`),
  }));
}

export async function ingest(api: AppProcess, products: unknown[]): Promise<{ imagesQueued: number }> {
  const res = await fetch(`${api.url}/v1/products`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ source: 'e2e', products }),
  });
  const body = (await res.json()) as { imagesQueued: number; summary: { failed: number } };
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${JSON.stringify(body).slice(0, 500)}`);
  return body;
}

/** Read-only queries against the deployment's database. */
export class DatabaseLook {
  private readonly pool: pg.Pool;

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
    this.pool.on('error', () => undefined); // a PostgreSQL restart cuts idle connections
  }

  async statusCounts(): Promise<{ download: Record<string, number>; process: Record<string, number>; total: number }> {
    const rows = (
      await this.pool.query<{ download_status: string; process_status: string; n: number }>(
        `SELECT download_status, process_status, count(*)::int AS n FROM product_images WHERE deleted_at IS NULL GROUP BY 1, 2`,
      )
    ).rows;
    const download: Record<string, number> = {};
    const process: Record<string, number> = {};
    let total = 0;
    for (const r of rows) {
      download[r.download_status] = (download[r.download_status] ?? 0) + r.n;
      process[r.process_status] = (process[r.process_status] ?? 0) + r.n;
      total += r.n;
    }
    return { download, process, total };
  }

  /** Waits until every one of `expected` images is processed; returns when that was. */
  async allProcessed(expected: number, timeoutMs: number): Promise<number> {
    await waitFor(
      `all ${expected} images to be processed`,
      async () => {
        const counts = await this.statusCounts().catch(() => null);
        return counts !== null && counts.total === expected && counts.process.processed === expected;
      },
      { timeoutMs, intervalMs: 100 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; last counts: ${JSON.stringify(await this.statusCounts().catch(() => null))}`);
    });
    return Date.now();
  }

  /** The claims held now at a stage (image id and claim token): after a kill, the dead worker's. */
  async heldClaims(stage: 'download' | 'process'): Promise<{ id: string; token: string }[]> {
    const status = stage === 'download' ? `download_status = 'downloading'` : `process_status = 'processing'`;
    const { rows } = await this.pool.query<{ id: string; token: string }>(
      `SELECT id, claim_token AS token FROM product_images WHERE ${status} AND claim_token IS NOT NULL`,
    );
    return rows;
  }

  /**
   * Waits until none of `claims` is held any more (each image finished, or claimed anew); returns
   * when. On a timeout the error names the claims still held and what `explain` says of them (the
   * state of their jobs), so a failed run tells why.
   */
  async takenOver(claims: { id: string; token: string }[], timeoutMs: number, explain?: (imageIds: string[]) => Promise<unknown>): Promise<number> {
    const stillHeld = async () =>
      (
        await this.pool.query<{ id: string; claimedUntil: Date }>(
          `SELECT p.id, p.claimed_until AS "claimedUntil" FROM product_images p JOIN unnest($1::uuid[], $2::uuid[]) AS c(id, token) ON p.id = c.id
           WHERE p.claim_token = c.token`,
          [claims.map((c) => c.id), claims.map((c) => c.token)],
        )
      ).rows;
    await waitFor(`the ${claims.length} claims of the killed worker to be taken over`, async () => (await stillHeld()).length === 0, { timeoutMs, intervalMs: 100 }).catch(
      async (err: Error) => {
        const held = await stillHeld();
        const jobs = explain ? await explain(held.map((h) => h.id)).catch((e: Error) => `unreadable: ${e.message}`) : undefined;
        throw new Error(`${err.message}; still held: ${JSON.stringify(held)}${jobs === undefined ? '' : `; their jobs: ${JSON.stringify(jobs)}`}`);
      },
    );
    return Date.now();
  }

  /** (product, url) pairs with more than one live row: there must be none. */
  async duplicateImages(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM product_images WHERE deleted_at IS NULL GROUP BY product_id, source_url HAVING count(*) > 1) d`,
    );
    return rows[0].n;
  }

  /** Every storage key a live row names (original, thumbnail, compressed, extra formats). */
  async storedKeys(): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ key: string }>(
      `SELECT unnest(ARRAY[key_original, key_thumbnail, key_compressed]) AS key FROM product_images WHERE deleted_at IS NULL
       UNION ALL
       SELECT e.value FROM product_images, jsonb_each_text(coalesce(keys_extra, '{}'::jsonb)) AS e WHERE deleted_at IS NULL`,
    );
    return new Set(rows.map((r) => r.key).filter(Boolean));
  }

  /** Sync records of maintenance runs of these kinds. */
  async runsOf(kinds: string[]): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_records WHERE kind = ANY($1)`, [kinds]);
    return rows[0].n;
  }

  query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
    return this.pool.query<T>(sql, params);
  }

  close() {
    return this.pool.end();
  }
}

/** Every file under the storage dir, split into finished files (by key) and temp files of unfinished writes. */
export async function storedFiles(root: string): Promise<{ files: Set<string>; temp: string[] }> {
  const files = new Set<string>();
  const temp: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (/^\..*\.tmp$/.test(entry.name)) temp.push(path.relative(root, full));
      else files.add(path.relative(root, full).split(path.sep).join('/'));
    }
  };
  await walk(root);
  return { files, temp };
}
