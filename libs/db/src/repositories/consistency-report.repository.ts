// Consistency reports: a run is started as running and finished (succeeded or failed) with its
// findings and their totals; operators list them newest first (GET /v1/maintenance/reports,
// `1688sync check`) and open one by id.
import { isUuid } from '@1688sync/core';
import type { EntityManager } from 'typeorm';
import { queryRows } from '../sql';
import {
  CONSISTENCY_SEVERITIES,
  ConsistencyReport,
  type ConsistencyFinding,
  type ConsistencySummary,
} from '../entities';
import { InvalidInputError, NotFoundError } from '../errors';
import { type Page, keysetPage } from './keyset';

/** error is text, but a stack or a driver message must not grow a report without bound. */
const MAX_ERROR_CHARS = 4000;

/** Totals of findings: counts by severity, and how many were fixed. */
export function summarizeFindings(findings: ConsistencyFinding[]): ConsistencySummary {
  const summary: ConsistencySummary = { info: 0, warning: 0, critical: 0, fixed: 0 };
  for (const finding of findings) {
    if (CONSISTENCY_SEVERITIES.includes(finding.severity)) summary[finding.severity] += finding.count;
    summary.fixed += finding.fixed;
  }
  return summary;
}

/** jsonb refuses \u0000 in strings; samples carry keys and messages from outside. */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? v.replace(/\u0000/g, '\uFFFD') : v));
}

function errorText(error: string | null | undefined): string | null {
  if (error === null || error === undefined) return null;
  const clean = error.replace(/\u0000/g, '\uFFFD');
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS - 1)}…` : clean;
}

export class ConsistencyReportRepository {
  constructor(private readonly manager: EntityManager) {}

  /** A new report, status running, with empty findings. */
  async start({ fix }: { fix: boolean }): Promise<ConsistencyReport> {
    const [row] = await queryRows<{ id: string }>(
      this.manager,
      `INSERT INTO consistency_reports (fix, status, summary, findings) VALUES ($1, 'running', $2::jsonb, '[]'::jsonb) RETURNING id`,
      [fix === true, JSON.stringify(summarizeFindings([]))],
    );
    return (await this.get(row.id))!;
  }

  /**
   * Finishes a report with its findings and their summary: failed when `error` is given,
   * succeeded otherwise. The duration runs from started_at.
   */
  async finish(id: string, { findings, error }: { findings: ConsistencyFinding[]; error?: string | null }): Promise<ConsistencyReport> {
    if (!isUuid(id)) throw new InvalidInputError('id', 'must be a UUID');
    const rows = await queryRows<{ id: string }>(
      this.manager,
      `UPDATE consistency_reports
       SET status = $2, finished_at = now(),
           duration_ms = GREATEST(0, round(extract(epoch FROM (clock_timestamp() - started_at)) * 1000))::int,
           summary = $3::jsonb, findings = $4::jsonb, error = $5, updated_at = now(), version = version + 1
       WHERE id = $1 RETURNING id`,
      [id, error ? 'failed' : 'succeeded', JSON.stringify(summarizeFindings(findings)), jsonText(findings), errorText(error)],
    );
    if (!rows.length) throw new NotFoundError('consistency report', id);
    return (await this.get(id))!;
  }

  /** The report, or null when there is none with this id (or the id is not a UUID). */
  async get(id: string): Promise<ConsistencyReport | null> {
    if (typeof id !== 'string' || !isUuid(id)) return null;
    return this.manager.findOne(ConsistencyReport, { where: { id } });
  }

  /** Keyset page, newest first by (started_at, id); uses consistency_reports_started_at_id_idx. */
  async list({ limit = 50, cursor }: { limit?: number; cursor?: string } = {}): Promise<Page<ConsistencyReport>> {
    const qb = this.manager.createQueryBuilder(ConsistencyReport, 'r');
    return keysetPage(qb, 'r', 'started_at', { limit, cursor, scope: 'consistency-reports' });
  }
}
