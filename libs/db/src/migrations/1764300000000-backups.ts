// backups: one row per backup, the catalogue that `backup list`, restore and prune read.
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Backups1764300000000 implements MigrationInterface {
  name = 'Backups1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "backups" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "deleted_at" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '1', "kind" character varying(8) NOT NULL, "incremental" boolean NOT NULL DEFAULT false, "base_backup_id" uuid, "status" character varying(16) NOT NULL DEFAULT 'running', "purpose" character varying(16) NOT NULL DEFAULT 'manual', "source" character varying(200), "name" character varying(100) NOT NULL, "started_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "finished_at" TIMESTAMP WITH TIME ZONE, "duration_ms" integer, "location" text, "remote_location" text, "bytes_total" bigint, "db_bytes" bigint, "files_bytes" bigint, "file_count" integer, "archived_file_count" integer, "schema_version" character varying(200), "row_counts" jsonb, "manifest_sha256" character varying(64), "pruned_at" TIMESTAMP WITH TIME ZONE, "error" text, CONSTRAINT "PK_ca30ff369eddfc7dac3b35d0d3c" PRIMARY KEY ("id"))`);
    // `backup list`, GET /v1/maintenance/backups: keyset pages newest first by (started_at, id)
    // (BackupRepository.list). Prune and the incremental's base lookup read the whole (small)
    // table; no other index. base_backup_id has no foreign key on purpose: a restore writes the
    // catalogue back in one statement, and a pruned base keeps its row anyway.
    await q.query(`CREATE INDEX "backups_started_at_id_idx" ON "backups" ("started_at", "id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "backups"`);
  }
}
