// consistency_reports: one row per consistency-check run, with its findings as jsonb.
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ConsistencyReports1764200000000 implements MigrationInterface {
  name = 'ConsistencyReports1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "consistency_reports" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "deleted_at" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '1', "fix" boolean NOT NULL DEFAULT false, "status" character varying(16) NOT NULL DEFAULT 'running', "started_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "finished_at" TIMESTAMP WITH TIME ZONE, "duration_ms" integer, "summary" jsonb NOT NULL DEFAULT '{}', "findings" jsonb NOT NULL DEFAULT '[]', "error" text, CONSTRAINT "PK_46064d49868ebbb11d69b7d96d7" PRIMARY KEY ("id"))`);
    // GET /v1/maintenance/reports and `1688sync check` history: keyset pages newest first by
    // (started_at, id), walked backwards (ConsistencyReportRepository.list).
    await q.query(`CREATE INDEX "consistency_reports_started_at_id_idx" ON "consistency_reports" ("started_at", "id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "consistency_reports"`);
  }
}
