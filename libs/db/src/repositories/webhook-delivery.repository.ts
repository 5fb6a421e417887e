// Webhook deliveries (docs/changes.md, Webhooks): one row per event per subscription that wants
// it, from the fan-out to delivered or failed. The rows are the truth of what is left to send; a
// BullMQ job only says "drain this subscription now", so a lost job loses nothing.
//
// - lane: the order key. Deliveries of one lane (one product; else one supplier; else one
//   external id) go out in feed position order, one at a time; other lanes are not held back.
// - due(): pending deliveries whose time has come, minus those behind an earlier pending one of
//   the same lane that waits for its retry.
// - Attempts are counted on the row; the dispatcher (libs/webhooks) decides the next attempt's
//   time and when to give up, and writes a batch of outcomes with one statement (record()).
//
// Indexes (migration 1764400000000-changes): webhook_deliveries_pending_idx (subscription_id,
// event_position) WHERE pending for due() and subscriptionsWithPending(); webhook_deliveries_lane_idx
// (subscription_id, lane, event_position) WHERE pending for due()'s "held back" probe;
// webhook_deliveries_list_idx (subscription_id, created_at, id) for list(). The partitions' primary
// keys (id, created_at) serve record() and redeliver().
import { isUuid } from '@1688sync/core';
import type { EntityManager } from 'typeorm';
import { decodeCursor, encodeCursor } from '../cursor';
import { InvalidInputError } from '../errors';
import { queryRows } from '../sql';
import { type ChangeEvent, presentEvent } from './change-feed.repository';
import type { Page } from './keyset';

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

export interface WebhookDelivery {
  id: string;
  eventId: string;
  type: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  /** When the next attempt is due; null unless pending. */
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

/** A delivery to send now, with its event's envelope (null when the event is past retention). */
export interface DueDelivery {
  id: string;
  /** The partition key, as exact text (microseconds kept), for record(). */
  createdAt: string;
  lane: string;
  attempts: number;
  eventPosition: number;
  event: ChangeEvent | null;
}

/** One attempt's outcome: delivered, pending again after `retryInMs`, or failed for good. */
export interface DeliveryOutcome {
  id: string;
  createdAt: string;
  status: WebhookDeliveryStatus;
  statusCode: number | null;
  error: string | null;
  /** For `pending`: milliseconds from now until the next attempt. */
  retryInMs?: number;
}

const EXACT_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const SCOPE = 'webhook-deliveries';

// The lane's key: a product's events share one, then a supplier's, then an external id's.
const LANE = `COALESCE('p:' || e.product_id::text, 's:' || e.supplier_id::text, 'x:' || e.external_id)`;

export const FAN_OUT_SQL = `
  WITH created AS (
    INSERT INTO webhook_deliveries (subscription_id, event_id, event_position, event_type, lane, status, last_error)
    SELECT s.id, e.id, e.position, e.type, ${LANE},
           CASE WHEN s.enabled THEN 'pending' ELSE 'failed' END,
           CASE WHEN s.enabled THEN NULL ELSE s.disabled_reason END
    FROM change_events e
    JOIN webhook_subscriptions s
      ON s.deleted_at IS NULL
     AND (e.type = ANY(s.events) OR '*' = ANY(s.events))
     AND (e.source IS NULL OR NOT e.source = ANY(s.exclude_sources))
    WHERE e.position BETWEEN $1 AND $2
    RETURNING subscription_id, status
  )
  SELECT subscription_id, count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*)::int AS created
  FROM created GROUP BY subscription_id`;

const DELIVERY_COLUMNS = `d.id, d.event_id, d.event_type, d.status, d.attempts, d.last_status_code, d.last_error, d.next_attempt_at, d.delivered_at, d.created_at`;

const iso = (v: unknown) => (v == null ? null : new Date(v as string).toISOString());

function present(r: Record<string, unknown>): WebhookDelivery {
  const status = r.status as WebhookDeliveryStatus;
  return {
    id: r.id as string,
    eventId: r.event_id as string,
    type: r.event_type as string,
    status,
    attempts: r.attempts as number,
    lastStatusCode: (r.last_status_code as number | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
    nextAttemptAt: status === 'pending' ? iso(r.next_attempt_at) : null,
    deliveredAt: iso(r.delivered_at),
    createdAt: iso(r.created_at)!,
  };
}

export interface FanOutResult {
  /** Subscriptions that got pending deliveries: their drains are to be queued. */
  subscriptionIds: string[];
  /** Deliveries recorded (pending, and failed for disabled subscriptions). */
  created: number;
}

export class WebhookDeliveryRepository {
  constructor(private readonly manager: EntityManager) {}

  /**
   * One delivery per event of positions first..last per live subscription that wants it: pending,
   * or failed with the reason when the subscription is disabled. Events whose `source` a
   * subscription excludes get none. Runs in the sequencer's transaction (ChangeFeedRepository.sequence).
   */
  async fanOut(first: number, last: number): Promise<FanOutResult> {
    const rows = await queryRows<{ subscription_id: string; pending: number; created: number }>(this.manager, FAN_OUT_SQL, [first, last]);
    return {
      subscriptionIds: rows.filter((r) => r.pending > 0).map((r) => r.subscription_id),
      created: rows.reduce((n, r) => n + r.created, 0),
    };
  }

  /**
   * Up to `limit` deliveries of a subscription to send now, in feed order: pending, due, and not
   * behind an earlier pending delivery of their lane that waits for a later retry. Lanes in
   * `exceptLanes` (still being sent by the caller) are left out.
   */
  async due(subscriptionId: string, limit: number, exceptLanes: readonly string[] = []): Promise<DueDelivery[]> {
    const rows = await queryRows<Record<string, unknown> & { d_id: string; d_created_at: string; lane: string; attempts: number; event_position: string }>(
      this.manager,
      `SELECT d.id AS d_id, d.created_at::text AS d_created_at, d.lane, d.attempts, d.event_position::text AS event_position,
              e.id, e.type, e.occurred_at, e.product_id, e.supplier_id, e.external_id, e.source, e.sync_record_id, e.data
       FROM webhook_deliveries d
       LEFT JOIN change_events e ON e.position = d.event_position
       WHERE d.subscription_id = $1 AND d.status = 'pending' AND d.next_attempt_at <= now()
         AND NOT d.lane = ANY($3::varchar[])
         AND NOT EXISTS (
           SELECT 1 FROM webhook_deliveries b
           WHERE b.subscription_id = d.subscription_id AND b.lane = d.lane AND b.status = 'pending'
             AND b.event_position < d.event_position AND b.next_attempt_at > now())
       ORDER BY d.event_position
       LIMIT $2`,
      [subscriptionId, limit, exceptLanes],
    );
    return rows.map((r) => ({
      id: r.d_id,
      createdAt: r.d_created_at,
      lane: r.lane,
      attempts: r.attempts,
      eventPosition: Number(r.event_position),
      event: r.id ? presentEvent(r) : null,
    }));
  }

  /** Writes a batch of attempt outcomes (each spends one attempt); rows no longer pending are left. */
  async record(outcomes: DeliveryOutcome[]): Promise<number> {
    if (!outcomes.length) return 0;
    const rows = await queryRows(
      this.manager,
      `UPDATE webhook_deliveries d SET
         status = r.status,
         attempts = d.attempts + 1,
         last_status_code = r.status_code,
         last_error = r.error,
         next_attempt_at = CASE WHEN r.status = 'pending' THEN now() + r.retry_ms * interval '1 millisecond' ELSE d.next_attempt_at END,
         delivered_at = CASE WHEN r.status = 'delivered' THEN now() ELSE d.delivered_at END,
         updated_at = now()
       FROM unnest($1::uuid[], $2::timestamptz[], $3::varchar[], $4::int[], $5::text[], $6::bigint[]) AS r(id, created_at, status, status_code, error, retry_ms)
       WHERE d.id = r.id AND d.created_at = r.created_at AND d.status = 'pending'
       RETURNING d.id`,
      [
        outcomes.map((o) => o.id),
        outcomes.map((o) => o.createdAt),
        outcomes.map((o) => o.status),
        outcomes.map((o) => o.statusCode),
        outcomes.map((o) => o.error),
        outcomes.map((o) => Math.max(0, Math.round(o.retryInMs ?? 0))),
      ],
    );
    return rows.length;
  }

  /** Fails every pending delivery of a subscription with `reason` (it was disabled or deleted). */
  async failPending(subscriptionId: string, reason: string): Promise<number> {
    const rows = await queryRows(
      this.manager,
      `UPDATE webhook_deliveries SET status = 'failed', last_error = $2, updated_at = now()
       WHERE subscription_id = $1 AND status = 'pending' RETURNING id`,
      [subscriptionId, reason],
    );
    return rows.length;
  }

  /** Keyset page of a subscription's deliveries, newest first by (created_at, id). */
  async list(subscriptionId: string, { status, cursor, limit = 50 }: { status?: WebhookDeliveryStatus; cursor?: string; limit?: number } = {}): Promise<Page<WebhookDelivery>> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new InvalidInputError('limit', 'must be a whole number from 1 to 200');
    const scope = `${SCOPE}:${subscriptionId}:${status ?? ''}`;
    const before = cursor
      ? decodeCursor(cursor, (p) => {
          // A cursor of another subscription or filter is refused like a tampered one.
          if (!Array.isArray(p) || p.length !== 3 || p[0] !== scope || !EXACT_TS.test(p[1]) || !isUuid(p[2])) throw new Error('shape');
          return { at: p[1] as string, id: p[2] as string };
        })
      : null;
    const rows = await queryRows(
      this.manager,
      `SELECT ${DELIVERY_COLUMNS}, to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_key
       FROM webhook_deliveries d
       WHERE d.subscription_id = $1 AND ($2::varchar IS NULL OR d.status = $2)
         AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3::timestamptz, $4::uuid))
       ORDER BY d.created_at DESC, d.id DESC
       LIMIT $5`,
      [subscriptionId, status ?? null, before?.at ?? null, before?.id ?? null, limit + 1],
    );
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items: items.map(present), nextCursor: rows.length > limit ? encodeCursor([scope, last.cursor_key, last.id]) : null };
  }

  /**
   * Sends a delivery again from scratch: pending, due now, attempts back to 0 (a full retry
   * budget, like a new event). Null when the subscription has no such delivery.
   */
  async redeliver(subscriptionId: string, deliveryId: string): Promise<WebhookDelivery | null> {
    const [row] = await queryRows(
      this.manager,
      `UPDATE webhook_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL, updated_at = now()
       WHERE d.subscription_id = $1 AND d.id = $2
       RETURNING ${DELIVERY_COLUMNS}`,
      [subscriptionId, deliveryId],
    );
    return row ? present(row) : null;
  }

  /** Seconds since the oldest pending delivery was recorded; 0 when none is pending. */
  async oldestPendingAgeSeconds(): Promise<number> {
    const [row] = await queryRows<{ age: number | null }>(
      this.manager,
      `SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS age FROM webhook_deliveries WHERE status = 'pending'`,
    );
    return Math.max(0, row?.age ?? 0);
  }

  /**
   * Subscriptions with pending deliveries (with `dueOnly`, only those with one due now). Walks
   * the pending index one subscription at a time (a loose index scan), so a backlog of a million
   * rows costs one probe per subscription, not a million rows.
   */
  async subscriptionsWithPending({ dueOnly = false }: { dueOnly?: boolean } = {}): Promise<string[]> {
    const rows = await queryRows<{ subscription_id: string }>(
      this.manager,
      `WITH RECURSIVE subs AS (
         (SELECT subscription_id FROM webhook_deliveries WHERE status = 'pending' ORDER BY subscription_id LIMIT 1)
         UNION ALL
         SELECT (SELECT w.subscription_id FROM webhook_deliveries w
                 WHERE w.status = 'pending' AND w.subscription_id > subs.subscription_id
                 ORDER BY w.subscription_id LIMIT 1)
         FROM subs WHERE subs.subscription_id IS NOT NULL
       )
       SELECT subscription_id FROM subs
       WHERE subscription_id IS NOT NULL
         AND (NOT $1 OR EXISTS (
           SELECT 1 FROM webhook_deliveries d
           WHERE d.subscription_id = subs.subscription_id AND d.status = 'pending' AND d.next_attempt_at <= now()))`,
      [dueOnly],
    );
    return rows.map((r) => r.subscription_id);
  }
}
