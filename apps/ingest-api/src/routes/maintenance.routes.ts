// Maintenance operations: queue a consistency check, a reconcile, a backup or the upkeep of the
// monthly partitions for the maintenance worker (202 { jobId }), and read the stored consistency reports and the
// backups catalogue. Restores are deliberately not on the API: they replace the whole database
// and need an operator at `1688sync backup restore <id> --yes`.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  BACKUP_KINDS,
  BACKUP_PURPOSES,
  BACKUP_STATUSES,
  CONSISTENCY_REPORT_STATUSES,
  CONSISTENCY_SEVERITIES,
  type ConsistencyReport,
} from '@1688sync/db';
import { type BackupSummary, MaintenanceUnavailableError, type RequestableMaintenance, backupSummary, requestMaintenance } from '@1688sync/maintenance';
import { JobName, type PayloadInputOf } from '@1688sync/queues';
import type { RouteTable } from '../http/route-spec';
import { type ApiContext, limit, notFound, uuidParam } from './context';

const isoDate = z.string().meta({ format: 'date-time' });

const jobAcceptedSchema = z
  .object({ jobId: z.string().meta({ description: 'id of the queued maintenance job (see /admin/queues)' }) })
  .meta({ id: 'MaintenanceJobAccepted' });

const findingSchema = z
  .object({
    check: z.string(),
    severity: z.enum(CONSISTENCY_SEVERITIES),
    count: z.number(),
    samples: z.array(z.record(z.string(), z.unknown())),
    suggestedFix: z.string(),
    fixed: z.number(),
    details: z.record(z.string(), z.number()).optional(),
    error: z.string().optional(),
  })
  .meta({ id: 'ConsistencyFinding' });

export const consistencyReportSchema = z
  .object({
    id: z.string(),
    fix: z.boolean(),
    status: z.enum(CONSISTENCY_REPORT_STATUSES),
    startedAt: isoDate,
    finishedAt: isoDate.nullable(),
    durationMs: z.number().nullable(),
    summary: z.object({ info: z.number(), warning: z.number(), critical: z.number(), fixed: z.number() }),
    findings: z.array(findingSchema),
    error: z.string().nullable(),
  })
  .meta({ id: 'ConsistencyReport' });

/** A list item: the report without its findings' samples (open the report for those). */
const consistencyReportSummarySchema = consistencyReportSchema
  .omit({ findings: true })
  .extend({ findings: z.array(findingSchema.omit({ samples: true })) })
  .meta({ id: 'ConsistencyReportSummary' });

/** A report row written by something other than the repository may lack totals. */
const EMPTY_SUMMARY = { info: 0, warning: 0, critical: 0, fixed: 0 };

const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

export function presentConsistencyReport(r: ConsistencyReport): z.output<typeof consistencyReportSchema> {
  return {
    id: r.id,
    fix: r.fix,
    status: r.status,
    startedAt: iso(r.startedAt)!,
    finishedAt: iso(r.finishedAt),
    durationMs: r.durationMs,
    summary: { ...EMPTY_SUMMARY, ...r.summary },
    findings: r.findings ?? [],
    error: r.error,
  };
}

export const backupSchema = z
  .object({
    id: z.string(),
    kind: z.enum(BACKUP_KINDS).meta({ description: 'full = database + image files; db = database only; files = image files only' }),
    incremental: z.boolean().meta({ description: 'the archive holds only files new or changed since baseBackupId' }),
    baseBackupId: z.string().nullable(),
    status: z.enum(BACKUP_STATUSES),
    purpose: z.enum(BACKUP_PURPOSES),
    source: z.string().nullable(),
    name: z.string().meta({ description: 'folder under BACKUP_DIR' }),
    location: z.string().nullable(),
    remoteLocation: z.string().nullable().meta({ description: 'where the artifacts were copied (BACKUP_COPY_TO_S3), if anywhere' }),
    startedAt: isoDate,
    finishedAt: isoDate.nullable(),
    durationMs: z.number().nullable(),
    bytesTotal: z.number().nullable(),
    dbBytes: z.number().nullable(),
    filesBytes: z.number().nullable(),
    fileCount: z.number().nullable(),
    archivedFileCount: z.number().nullable(),
    schemaVersion: z.string().nullable().meta({ description: 'the last migration applied when the database was dumped' }),
    rowCounts: z.record(z.string(), z.number()).nullable(),
    manifestSha256: z.string().nullable(),
    prunedAt: isoDate.nullable(),
    error: z.string().nullable(),
  })
  .meta({ id: 'Backup' }) satisfies z.ZodType<BackupSummary>;

export function registerMaintenanceRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  /** Queues one maintenance job; Redis down (or silent) is a 503 `unavailable`, never a 500. */
  async function queueMaintenanceJob<J extends RequestableMaintenance>(job: J, data: PayloadInputOf<J>) {
    try {
      return await requestMaintenance(ctx.producers, job, data, { requestedBy: 'api' });
    } catch (err) {
      if (err instanceof MaintenanceUnavailableError) app.log.warn({ err: { message: err.message }, job }, 'could not queue a maintenance job');
      throw err;
    }
  }

  routes.add(app, {
    method: 'POST',
    url: '/v1/maintenance/consistency-check',
    operationId: 'runConsistencyCheck',
    summary: 'Queue a consistency check (a dry run unless fix is true); its report appears under /v1/maintenance/reports',
    tag: 'maintenance',
    role: 'admin',
    body: z
      .object({ fix: z.boolean().optional().meta({ description: 'repair what is safe to repair (default false: report only)' }) })
      .strict()
      .default({}),
    responses: { 202: { description: 'the check is queued', schema: jobAcceptedSchema }, 503: { description: 'Redis is unavailable' } },
    async handler({ body, reply }) {
      const accepted = await queueMaintenanceJob(JobName.ConsistencyCheck, { fix: body.fix ?? false });
      reply.code(202);
      return accepted;
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/maintenance/reconcile',
    operationId: 'runReconcile',
    summary: 'Queue a reconcile: every image whose download or processing is not done and not queued is queued again',
    tag: 'maintenance',
    role: 'admin',
    responses: { 202: { description: 'the reconcile is queued', schema: jobAcceptedSchema }, 503: { description: 'Redis is unavailable' } },
    async handler({ reply }) {
      const accepted = await queueMaintenanceJob(JobName.Reconcile, {});
      reply.code(202);
      return accepted;
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/maintenance/partitions',
    operationId: 'maintainPartitions',
    summary:
      'Queue maintain-partitions: the monthly partitions of change events, product history and webhook deliveries are created three months ahead and dropped past retention',
    tag: 'maintenance',
    role: 'admin',
    responses: { 202: { description: 'maintain-partitions is queued', schema: jobAcceptedSchema }, 503: { description: 'Redis is unavailable' } },
    async handler({ reply }) {
      const accepted = await queueMaintenanceJob(JobName.MaintainPartitions, {});
      reply.code(202);
      return accepted;
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/maintenance/reports',
    operationId: 'listConsistencyReports',
    summary: 'Consistency reports, newest first (findings without their samples)',
    tag: 'maintenance',
    role: 'read',
    query: z.object({ limit, cursor: z.string().max(2000).optional() }),
    responses: {
      200: { description: 'a page of reports', schema: z.object({ items: z.array(consistencyReportSummarySchema), nextCursor: z.string().nullable() }) },
    },
    async handler({ query }) {
      const result = await (await ctx.repos()).consistencyReports.list(query);
      return {
        items: result.items.map((r) => {
          const full = presentConsistencyReport(r);
          return { ...full, findings: full.findings.map(({ samples: _samples, ...finding }) => finding) };
        }),
        nextCursor: result.nextCursor,
      };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/maintenance/reports/:id',
    operationId: 'getConsistencyReport',
    summary: 'One consistency report: per finding its severity, count, samples, suggested fix and fixes applied',
    tag: 'maintenance',
    role: 'read',
    params: uuidParam,
    responses: { 200: { description: 'the report', schema: consistencyReportSchema }, 404: { description: 'no such report' } },
    async handler({ params }) {
      const report = await (await ctx.repos()).consistencyReports.get(params.id);
      return report ? presentConsistencyReport(report) : notFound('consistency report', params.id);
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/maintenance/backups',
    operationId: 'createBackup',
    summary: 'Queue a backup for the maintenance worker; it appears under GET /v1/maintenance/backups as running, then succeeded or failed',
    tag: 'maintenance',
    role: 'admin',
    body: z
      .object({
        kind: z.enum(BACKUP_KINDS).optional().meta({ description: 'full (default): database + image files; db: database only; files: image files only' }),
        incremental: z.boolean().optional().meta({ description: 'archive only the files new or changed since the last full backup (kinds full and files)' }),
      })
      .strict()
      .default({})
      .superRefine((body, refine) => {
        if (body.incremental && body.kind === 'db') {
          refine.addIssue({ code: 'custom', path: ['incremental'], message: 'applies to image files: use kind full or files' });
        }
      }),
    responses: { 202: { description: 'the backup is queued', schema: jobAcceptedSchema }, 503: { description: 'Redis is unavailable' } },
    async handler({ body, reply }) {
      const accepted = await queueMaintenanceJob(JobName.Backup, { kind: body.kind ?? 'full', incremental: body.incremental ?? false });
      reply.code(202);
      return accepted;
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/maintenance/backups',
    operationId: 'listBackups',
    summary: 'The backups catalogue, newest first; restore one by id with `1688sync backup restore <id> --yes`',
    tag: 'maintenance',
    role: 'read',
    query: z.object({ limit, cursor: z.string().max(2000).optional() }),
    responses: { 200: { description: 'a page of backups', schema: z.object({ items: z.array(backupSchema), nextCursor: z.string().nullable() }) } },
    async handler({ query }) {
      const result = await (await ctx.repos()).backups.list(query);
      return { items: result.items.map(backupSummary), nextCursor: result.nextCursor };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/maintenance/backups/:id',
    operationId: 'getBackup',
    summary: 'One backup: its kind, status, sizes, schema version and row counts',
    tag: 'maintenance',
    role: 'read',
    params: uuidParam,
    responses: { 200: { description: 'the backup', schema: backupSchema }, 404: { description: 'no such backup' } },
    async handler({ params }) {
      const backup = await (await ctx.repos()).backups.get(params.id);
      return backup ? backupSummary(backup) : notFound('backup', params.id);
    },
  });
}
