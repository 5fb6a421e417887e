// Webhook subscriptions (docs/changes.md, Webhooks): who wants which events, where, signed with
// which secrets, and whether deliveries still go out.
//
// - Secrets are stored as given: the sender needs them to sign. A rotation keeps the previous one
//   signing too until previous_secret_until (24 h), so receivers can switch without a gap.
// - Health: failing_since is set by the first failed attempt after a success and cleared by a
//   success; when it is older than the threshold (24 h) the subscription is disabled with a reason.
//   Deliveries of events that happen while it is disabled are recorded as failed with that reason.
// - Deleted subscriptions are soft-deleted (deleted_at): their deliveries stay readable history.
//
// Indexes: webhook_subscriptions_created_idx (created_at, id) WHERE deleted_at IS NULL for list().
import { isUuid } from '@1688sync/core';
import type { EntityManager } from 'typeorm';
import { decodeCursor, encodeCursor } from '../cursor';
import { InvalidInputError } from '../errors';
import { queryRows } from '../sql';
import type { Page } from './keyset';

export interface WebhookSubscription {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  excludeSources: string[];
  enabled: boolean;
  disabledReason: string | null;
  /** The first failed attempt since the last success; null while deliveries succeed. */
  failingSince: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What a delivery needs: where to, and the secrets that sign (the current one first). */
export interface WebhookTarget {
  id: string;
  url: string;
  enabled: boolean;
  disabledReason: string | null;
  /** The current secret, then the previous one while it still signs (24 h after a rotation). */
  secrets: string[];
  /** The first failed attempt since the last success; null while deliveries succeed. */
  failingSince: string | null;
}

export interface NewWebhookSubscription {
  url: string;
  events: string[];
  secret: string;
  description?: string | null;
  excludeSources?: string[];
}

/** Fields a PATCH may change; absent ones are kept. `enabled: true` also clears the disabled reason. */
export interface WebhookSubscriptionPatch {
  url?: string;
  events?: string[];
  description?: string | null;
  excludeSources?: string[];
  enabled?: boolean;
}

/** The reason a subscription carries when an operator disabled it. */
export const DISABLED_BY_OPERATOR = 'disabled by an operator (PATCH {"enabled": false}); PATCH {"enabled": true} re-enables it';

const EXACT_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const SCOPE = 'webhooks';

const COLUMNS = `id, url, events, description, exclude_sources, enabled, disabled_reason, failing_since, created_at, updated_at`;

const iso = (v: unknown) => (v == null ? null : new Date(v as string).toISOString());

function present(r: Record<string, unknown>): WebhookSubscription {
  return {
    id: r.id as string,
    url: r.url as string,
    events: r.events as string[],
    description: (r.description as string | null) ?? null,
    excludeSources: r.exclude_sources as string[],
    enabled: r.enabled as boolean,
    disabledReason: (r.disabled_reason as string | null) ?? null,
    failingSince: iso(r.failing_since),
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

export class WebhookSubscriptionRepository {
  constructor(private readonly manager: EntityManager) {}

  async create(s: NewWebhookSubscription): Promise<WebhookSubscription> {
    const [row] = await queryRows(
      this.manager,
      `INSERT INTO webhook_subscriptions (url, events, secret, description, exclude_sources)
       VALUES ($1, $2::text[], $3, $4, $5::text[]) RETURNING ${COLUMNS}`,
      [s.url, s.events, s.secret, s.description ?? null, s.excludeSources ?? []],
    );
    return present(row);
  }

  async get(id: string): Promise<WebhookSubscription | null> {
    const [row] = await queryRows(this.manager, `SELECT ${COLUMNS} FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL`, [id]);
    return row ? present(row) : null;
  }

  /** Keyset page, oldest first by (created_at, id). */
  async list({ limit = 50, cursor }: { limit?: number; cursor?: string } = {}): Promise<Page<WebhookSubscription>> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new InvalidInputError('limit', 'must be a whole number from 1 to 200');
    const after = cursor
      ? decodeCursor(cursor, (p) => {
          if (!Array.isArray(p) || p.length !== 3 || p[0] !== SCOPE || !EXACT_TS.test(p[1]) || !isUuid(p[2])) throw new Error('shape');
          return { at: p[1] as string, id: p[2] as string };
        })
      : null;
    const rows = await queryRows(
      this.manager,
      `SELECT ${COLUMNS}, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_key
       FROM webhook_subscriptions
       WHERE deleted_at IS NULL AND ($1::timestamptz IS NULL OR (created_at, id) > ($1::timestamptz, $2::uuid))
       ORDER BY created_at, id
       LIMIT $3`,
      [after?.at ?? null, after?.id ?? null, limit + 1],
    );
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items: items.map(present), nextCursor: rows.length > limit ? encodeCursor([SCOPE, last.cursor_key, last.id]) : null };
  }

  /** Changes the given fields; null when there is no such live subscription. */
  async update(id: string, patch: WebhookSubscriptionPatch): Promise<WebhookSubscription | null> {
    // In SET, a column on the right-hand side is its value before this UPDATE.
    const [row] = await queryRows(
      this.manager,
      `UPDATE webhook_subscriptions SET
         url = COALESCE($2, url),
         events = COALESCE($3::text[], events),
         description = CASE WHEN $4 THEN $5 ELSE description END,
         exclude_sources = COALESCE($6::text[], exclude_sources),
         enabled = COALESCE($7, enabled),
         disabled_reason = CASE WHEN $7 IS TRUE THEN NULL WHEN $7 IS FALSE AND enabled THEN $8 ELSE disabled_reason END,
         failing_since = CASE WHEN $7 IS TRUE THEN NULL ELSE failing_since END,
         updated_at = now()
       WHERE id = $1 AND deleted_at IS NULL
       RETURNING ${COLUMNS}`,
      [
        id,
        patch.url ?? null,
        patch.events ?? null,
        patch.description !== undefined,
        patch.description ?? null,
        patch.excludeSources ?? null,
        patch.enabled ?? null,
        DISABLED_BY_OPERATOR,
      ],
    );
    return row ? present(row) : null;
  }

  /** Signs with `secret` from now on, and with the old one too for `keepPreviousMs` more. */
  async rotateSecret(id: string, secret: string, keepPreviousMs = 24 * 3600_000): Promise<WebhookSubscription | null> {
    const [row] = await queryRows(
      this.manager,
      `UPDATE webhook_subscriptions
       SET previous_secret = secret, previous_secret_until = now() + $3 * interval '1 millisecond', secret = $2, updated_at = now()
       WHERE id = $1 AND deleted_at IS NULL
       RETURNING ${COLUMNS}`,
      [id, secret, keepPreviousMs],
    );
    return row ? present(row) : null;
  }

  /** True when a live subscription was deleted. Its deliveries stay as history. */
  async softDelete(id: string): Promise<boolean> {
    const rows = await queryRows(this.manager, `UPDATE webhook_subscriptions SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING id`, [id]);
    return rows.length > 0;
  }

  /** Where and how to deliver to a live subscription; null when it is gone. */
  async target(id: string): Promise<WebhookTarget | null> {
    const [row] = await queryRows<{ id: string; url: string; enabled: boolean; disabled_reason: string | null; failing_since: string | null; secret: string; previous_secret: string | null }>(
      this.manager,
      `SELECT id, url, enabled, disabled_reason, failing_since, secret, CASE WHEN previous_secret_until > now() THEN previous_secret END AS previous_secret
       FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL`,
      [id],
    );
    if (!row) return null;
    return {
      id: row.id,
      url: row.url,
      enabled: row.enabled,
      disabledReason: row.disabled_reason,
      failingSince: iso(row.failing_since),
      secrets: row.previous_secret && row.previous_secret !== row.secret ? [row.secret, row.previous_secret] : [row.secret],
    };
  }

  /**
   * Records the health of an enabled subscription after a batch of attempts: any success clears
   * failing_since; failures only set it when unset. A subscription failing for longer than
   * `disableAfterMs` is disabled; the answer is its reason then, else null. A success while
   * nothing was failing writes nothing (the common case costs no row version).
   */
  async recordHealth(id: string, { delivered, disableAfterMs }: { delivered: boolean; disableAfterMs: number }): Promise<string | null> {
    const [row] = await queryRows<{ enabled: boolean; disabled_reason: string | null }>(
      this.manager,
      `WITH judged AS (
         SELECT id, (NOT $2 AND failing_since <= now() - $3 * interval '1 millisecond') IS TRUE AS disable
         FROM webhook_subscriptions
         WHERE id = $1 AND deleted_at IS NULL AND enabled AND NOT ($2 AND failing_since IS NULL)
       )
       UPDATE webhook_subscriptions s SET
         failing_since = CASE WHEN $2 THEN NULL ELSE COALESCE(s.failing_since, now()) END,
         enabled = NOT j.disable,
         disabled_reason = CASE WHEN j.disable
           THEN format('every delivery has failed since %s; fix the receiver, then PATCH {"enabled": true} and redeliver what failed',
                       to_char(s.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
           ELSE s.disabled_reason END,
         updated_at = CASE WHEN j.disable THEN now() ELSE s.updated_at END
       FROM judged j
       WHERE s.id = j.id
       RETURNING s.enabled, s.disabled_reason`,
      [id, delivered, disableAfterMs],
    );
    return row && !row.enabled ? row.disabled_reason : null;
  }
}
