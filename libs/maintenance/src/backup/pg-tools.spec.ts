// pg_dump/pg_restore: the version check (pure), the libpq environment built from DATABASE_URL,
// and the tools on this machine against the real server.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { testServerUrl } from '@1688sync/testing';
import { describe, expect, it } from 'vitest';
import { PgToolFailedError, PgToolVersionError } from './backup.errors';
import { PgTools, checkArchiveReadable, checkPgToolVersion, pgEnvironment, serverMajorVersion, toolMajorVersion } from './pg-tools';

const PG_DUMP_15 = 'pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)';

describe('checkPgToolVersion', () => {
  it('accepts a client of the server\'s major version or newer', () => {
    expect(checkPgToolVersion('pg_dump', PG_DUMP_15, 150020)).toEqual({ toolMajor: 15, serverMajor: 15 });
    expect(checkPgToolVersion('pg_dump', 'pg_dump (PostgreSQL) 17.2', 150020)).toEqual({ toolMajor: 17, serverMajor: 15 });
    expect(checkPgToolVersion('pg_dump', 'pg_dump (PostgreSQL) 16beta2', 90624)).toEqual({ toolMajor: 16, serverMajor: 9.6 });
  });

  it('refuses an older client in one line saying what to install', () => {
    expect(() => checkPgToolVersion('pg_dump', PG_DUMP_15, 160004)).toThrow(PgToolVersionError);
    expect(() => checkPgToolVersion('pg_dump', PG_DUMP_15, 160004)).toThrow(
      /^pg_dump 15 cannot dump a PostgreSQL 16 server: install postgresql-client-16 \(or newer\) and put its pg_dump first on PATH$/,
    );
    expect(() => checkPgToolVersion('pg_restore', 'pg_restore (PostgreSQL) 14.11', 150020)).toThrow(/^pg_restore 14 cannot restore into a PostgreSQL 15 server: install postgresql-client-15/);
  });

  it('refuses what it cannot read as a PostgreSQL tool version', () => {
    expect(() => checkPgToolVersion('pg_dump', 'command not found', 150020)).toThrow(/could not read the version of pg_dump/);
  });

  it('refuses a pg_restore older than the pg_dump that made the archive', () => {
    expect(() => checkArchiveReadable('pg_restore (PostgreSQL) 15.20', 'pg_dump (PostgreSQL) 16.1')).toThrow(/^pg_restore 15 cannot read a dump made by pg_dump 16: install postgresql-client-16/);
    expect(() => checkArchiveReadable('pg_restore (PostgreSQL) 16.1', PG_DUMP_15)).not.toThrow();
  });

  it('reads major versions of both numbering schemes', () => {
    expect(toolMajorVersion('pg_dump (PostgreSQL) 9.6.24')).toBe(9.6);
    expect(toolMajorVersion(PG_DUMP_15)).toBe(15);
    expect(serverMajorVersion(150020)).toBe(15);
    expect(serverMajorVersion(90624)).toBe(9.6);
  });
});

describe('pgEnvironment', () => {
  it('takes host, port, user, password and database from DATABASE_URL, for the environment only', () => {
    expect(pgEnvironment('postgres://sync:s%40cret@db.internal:6432/sync1688?sslmode=require')).toMatchObject({
      PGHOST: 'db.internal',
      PGPORT: '6432',
      PGUSER: 'sync',
      PGPASSWORD: 's@cret',
      PGDATABASE: 'sync1688',
      PGSSLMODE: 'require',
    });
  });

  it('reads a socket directory given as host=, and leaves out what the URL does not say', () => {
    const env = pgEnvironment('postgres:///sync1688?host=/var/run/postgresql');
    expect(env).toMatchObject({ PGHOST: '/var/run/postgresql', PGDATABASE: 'sync1688' });
    expect(env).not.toHaveProperty('PGPASSWORD');
    expect(env).not.toHaveProperty('PGPORT');
  });
});

describe('PgTools on this machine', () => {
  it('has a pg_dump and pg_restore that fit the server', async () => {
    const tools = new PgTools(testServerUrl());
    const dump = await tools.version('pg_dump');
    const restore = await tools.version('pg_restore');
    expect(toolMajorVersion(dump)).not.toBeNull();
    expect(toolMajorVersion(restore)).toBe(toolMajorVersion(dump));
  });

  it('says what pg_dump printed when it fails', async () => {
    const url = new URL(testServerUrl());
    url.pathname = '/sync1688_no_such_database_for_pg_tools_spec';
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pg-tools-'));
    try {
      const failure = await new PgTools(url.toString()).dump(path.join(dir, 'db.dump'), { excludeTableData: [] }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(PgToolFailedError);
      expect((failure as Error).message).toMatch(/^pg_dump exited with code 1: .*sync1688_no_such_database_for_pg_tools_spec.*does not exist/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
