import { describe, expect, it } from 'vitest';
import { closedPort } from '@1688sync/testing';
import { useCliTestEnvironment } from './cli-test-environment.test-helper';

const cli = useCliTestEnvironment('cli-db');
const { run, sql, product } = cli;

describe('1688sync db', () => {
  it('stats: sizes, unused indexes, slow statements, pool', async () => {
    await product(2);
    const { code, stdout, stderr } = await run(['db', 'stats']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(new RegExp(`database ${new URL(cli.databaseUrl).pathname.slice(1)}: \\d`));
    expect(stdout).toMatch(/^product_images\s+/m);
    expect(stdout).toContain('unused indexes');
    expect(stdout).toContain('slow statements: pg_stat_statements is not installed');
    expect(stdout).toMatch(/pool \(primary, this process\): \d+ of 4 connections open/);
    expect(stdout).toMatch(/server: \d+ of max_connections \d+ in use/);

    const json = await run(['db', 'stats', '--json']);
    expect(json.code).toBe(0);
    const stats = JSON.parse(json.stdout);
    expect(stats.tables.map((t: { table: string }) => t.table)).toEqual(expect.arrayContaining(['products', 'product_images', 'consistency_reports']));
    expect(stats.slowStatements).toMatchObject({ available: false });
  });

  it('vacuum: VACUUM (ANALYZE) of every table', async () => {
    const { code, stdout, stderr } = await run(['db', 'vacuum']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^products\s+\d+$/m);
    expect(stdout).toMatch(/VACUUM \(ANALYZE\) done on \d+ table\(s\)/);
    const [{ last_vacuum }] = await sql<{ last_vacuum: Date | null }>(`SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'product_images'`);
    expect(last_vacuum).not.toBeNull();
  });

  it.each([[['db']], [['db', 'sideways']]])('exits 2 for %o', async (args) => {
    const { code, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(/db (needs|takes) stats or vacuum/);
  });

  it('exits 1 saying PostgreSQL is unreachable', async () => {
    const { code, stderr } = await run(['db', 'stats'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${await closedPort()}/nowhere` });
    expect(code).toBe(1);
    expect(stderr).toContain('PostgreSQL is not reachable at 127.0.0.1:');
  });
});
