// What PostgreSQL's own catalogue says about the database the app works in: the server's version,
// whether a table exists, the tables of the schema, exact row counts, an exported snapshot. Backup
// and restore (libs/maintenance) read these to dump, restore and verify (and a restore drops the
// partitioned tables pg_restore --clean cannot); `migrate` to decide whether a backup is possible
// before migrating.
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';

export interface SchemaTable {
  name: string;
  /** schema.table, quoted for SQL. */
  quoted: string;
  /** The partitioned table a partition belongs to (the root of its tree); null for a plain table. */
  partitionOf: string | null;
}

export class CatalogRepository {
  constructor(private readonly manager: EntityManager) {}

  /** The server's version: as a number (150004) and as it names itself ("15.4 (Debian …)"). */
  async serverVersion(): Promise<{ num: number; server: string }> {
    const [row] = await queryRows<{ num: number; server: string }>(
      this.manager,
      `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS server`,
    );
    return row;
  }

  /** Whether a table (or view) of this name is visible on the search path. */
  async tableExists(name: string): Promise<boolean> {
    const [row] = await queryRows<{ exists: boolean }>(this.manager, `SELECT to_regclass($1::text) IS NOT NULL AS exists`, [name]);
    return row.exists;
  }

  /** Whether the schema the app works in has a table of this (unquoted) name. */
  async schemaTableExists(name: string): Promise<boolean> {
    const [row] = await queryRows<{ exists: boolean }>(
      this.manager,
      `SELECT to_regclass(format('%I.%I', current_schema(), $1::text)) IS NOT NULL AS exists`,
      [name],
    );
    return row.exists;
  }

  /** A table of the app's schema, qualified and quoted for SQL and for pg_dump's options. */
  async qualifiedTableName(name: string): Promise<string> {
    const [row] = await queryRows<{ quoted: string }>(this.manager, `SELECT format('%I.%I', current_schema(), $1::text) AS quoted`, [name]);
    return row.quoted;
  }

  /**
   * The tables a backup holds the data of: the app's schema without `backups` itself. Only tables
   * that hold rows (plain tables and the partitions of partitioned ones); a partitioned table holds
   * none of its own — counting it beside its partitions would count each of its rows twice.
   */
  async tablesToBackUp(): Promise<SchemaTable[]> {
    return queryRows<SchemaTable>(
      this.manager,
      `SELECT c.relname AS name, format('%I.%I', n.nspname, c.relname) AS quoted, root.relname AS "partitionOf"
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_class root ON c.relispartition AND root.oid = pg_partition_root(c.oid)
       WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname <> 'backups'
       ORDER BY c.relname`,
    );
  }

  /**
   * Drops every partitioned table of the app's schema with its partitions, and answers their
   * names. For a restore only: pg_restore --clean cannot drop a partition's primary key (it is
   * its table's, inherited) and so fails on a partitioned table that is already there; dropped
   * first, the table is recreated by pg_restore with the partitions of the dump, as --clean meant.
   */
  async dropPartitionedTables(): Promise<string[]> {
    const tables = await queryRows<{ name: string; quoted: string }>(
      this.manager,
      `SELECT c.relname AS name, format('%I.%I', n.nspname, c.relname) AS quoted
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relkind = 'p' AND NOT c.relispartition
       ORDER BY c.relname`,
    );
    for (const t of tables) await queryRows(this.manager, `DROP TABLE ${t.quoted}`);
    return tables.map((t) => t.name);
  }

  /** The exact number of rows of a table; `quoted` is an identifier already quoted for SQL. */
  async countRows(quoted: string): Promise<number> {
    const [row] = await queryRows<{ n: string }>(this.manager, `SELECT count(*)::bigint AS n FROM ${quoted}`);
    return Number(row.n);
  }

  /**
   * Exports the snapshot of the manager's transaction (REPEATABLE READ, open until the reader of
   * the snapshot is done) and lifts the statement timeout for that transaction only.
   */
  async exportSnapshot(): Promise<string> {
    await queryRows(this.manager, 'SET LOCAL statement_timeout = 0');
    const [row] = await queryRows<{ snapshot: string }>(this.manager, 'SELECT pg_export_snapshot() AS snapshot');
    return row.snapshot;
  }
}
