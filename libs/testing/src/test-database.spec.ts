import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from './test-database';

describe('createTestDatabase', () => {
  it('creates a fresh database and drops it again', async () => {
    const db = await createTestDatabase('helpers');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query('SELECT current_database() AS name');
    await client.end();
    expect(rows[0].name).toBe(db.name);
    await db.drop();
    const again = new pg.Client({ connectionString: db.url });
    await expect(again.connect()).rejects.toThrow(/does not exist/);
  });
});
