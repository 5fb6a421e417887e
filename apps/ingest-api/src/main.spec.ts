import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestDatabase, createTestDatabase, describeAppProcessContract, startAppProcess, waitForHttp } from '@1688sync/testing';

describeAppProcessContract({ app: 'ingest-api', consumes: 'product-ingest' });

describe('ingest-api with MIGRATE_ON_START=true', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('migrate_on_start');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('applies pending migrations before it listens', async () => {
    const proc = await startAppProcess('ingest-api', { DATABASE_URL: db.url, MIGRATE_ON_START: 'true' });
    try {
      expect((await waitForHttp(`${proc.url}/healthz`, proc)).status).toBe(200);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const { rows } = await client.query('SELECT name FROM migrations');
      await client.end();
      expect(rows.map((r) => r.name)).toEqual(['InitialSchema1764100000000']);
      expect(proc.output()).toContain('applied 1 migration(s)');
    } finally {
      expect((await proc.stop()).code).toBe(0);
    }
  });
});
