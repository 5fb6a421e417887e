// What changed (docs/changes.md): the change outbox and feed, product history, webhook
// subscriptions and deliveries, and the monthly partitions they live in.
//
// - change_outbox: events as the transaction that made the change writes them. `seq` is drawn
//   when the event is inserted, after the change's row locks are held, so two changes of one
//   product draw in the order they happened.
// - change_events: the feed. The sequencer (ChangeFeedRepository.sequence) moves committed
//   outbox rows here in seq order and numbers them (`position`) after commit, so a position is
//   visible only once every event that precedes it is: a feed walker never skips one.
// - change_feed_state: the last position handed out and the highest one dropped by retention
//   (a cursor below it answers 410).
// - product_history: one point per observed change of price, stock or status.
// - webhook_subscriptions, webhook_deliveries: who wants which events, and each event's
//   delivery to each of them.
// Event data and history's tiers and SKUs are json, not jsonb: written once and served as
// written, never queried into, and json is stored without building a tree (half the cost of
// jsonb on the ingest path).
// Events, history and deliveries are partitioned by month and have no foreign keys: a purge
// never cascades into them, and retention drops whole partitions.
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Changes1764400000000 implements MigrationInterface {
  name = 'Changes1764400000000';

  async up(q: QueryRunner): Promise<void> {
    // Monthly partitions of a partitioned table: <parent>_pYYYY_MM for `months` months from the
    // month of `from` on, each created only when missing. Used here and by maintain-partitions.
    await q.query(`
      CREATE FUNCTION "sync1688_ensure_month_partitions"(parent text, "from" timestamptz, months int) RETURNS int
      LANGUAGE plpgsql AS $fn$
      DECLARE
        first date := date_trunc('month', "from" AT TIME ZONE 'UTC')::date;
        m date;
        created int := 0;
        name text;
      BEGIN
        FOR i IN 0 .. months - 1 LOOP
          m := (first + make_interval(months => i))::date;
          name := format('%s_p%s', parent, to_char(m, 'YYYY_MM'));
          IF to_regclass(quote_ident(name)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
              name, parent, (m::timestamp AT TIME ZONE 'UTC'), ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
          END IF;
        END LOOP;
        RETURN created;
      END
      $fn$`);

    await q.query(`CREATE TABLE "change_outbox" (
      "seq" bigserial PRIMARY KEY,
      "id" uuid NOT NULL DEFAULT gen_random_uuid(),
      "type" character varying(64) NOT NULL,
      "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT statement_timestamp(),
      "product_id" uuid,
      "supplier_id" uuid,
      "external_id" character varying(128) NOT NULL,
      "source" character varying(200),
      "sync_record_id" uuid,
      "data" json NOT NULL)`);

    await q.query(`CREATE TABLE "change_feed_state" (
      "id" boolean PRIMARY KEY DEFAULT true CHECK ("id"),
      "last_position" bigint NOT NULL DEFAULT 0,
      "expired_through" bigint NOT NULL DEFAULT 0)`);
    await q.query(`INSERT INTO "change_feed_state" DEFAULT VALUES`);

    await q.query(`CREATE TABLE "change_events" (
      "position" bigint NOT NULL,
      "recorded_at" TIMESTAMP WITH TIME ZONE NOT NULL,
      "id" uuid NOT NULL,
      "type" character varying(64) NOT NULL,
      "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL,
      "product_id" uuid,
      "supplier_id" uuid,
      "external_id" character varying(128) NOT NULL,
      "source" character varying(200),
      "sync_record_id" uuid,
      "data" json NOT NULL,
      PRIMARY KEY ("position", "recorded_at")) PARTITION BY RANGE ("recorded_at")`);
    // The feed filtered by product, supplier or type walks these by position.
    await q.query(`CREATE INDEX "change_events_product_idx" ON "change_events" ("product_id", "position") WHERE "product_id" IS NOT NULL`);
    await q.query(`CREATE INDEX "change_events_supplier_idx" ON "change_events" ("supplier_id", "position") WHERE "supplier_id" IS NOT NULL`);
    await q.query(`CREATE INDEX "change_events_type_idx" ON "change_events" ("type", "position")`);
    await q.query(`CREATE TABLE "change_events_default" PARTITION OF "change_events" DEFAULT`);

    await q.query(`CREATE TABLE "product_history" (
      "seq" bigserial NOT NULL,
      "product_id" uuid NOT NULL,
      "at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT statement_timestamp(),
      "price_min" numeric(14,4),
      "price_max" numeric(14,4),
      "price_tiers" json,
      "skus" json NOT NULL DEFAULT '[]',
      "status" character varying(16),
      PRIMARY KEY ("product_id", "at", "seq")) PARTITION BY RANGE ("at")`);
    await q.query(`CREATE TABLE "product_history_default" PARTITION OF "product_history" DEFAULT`);

    await q.query(`CREATE TABLE "webhook_subscriptions" (
      "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "deleted_at" TIMESTAMP WITH TIME ZONE,
      "url" text NOT NULL,
      "events" text[] NOT NULL,
      "description" character varying(500),
      "exclude_sources" text[] NOT NULL DEFAULT '{}',
      "secret" character varying(200) NOT NULL,
      "previous_secret" character varying(200),
      "previous_secret_until" TIMESTAMP WITH TIME ZONE,
      "enabled" boolean NOT NULL DEFAULT true,
      "disabled_reason" text,
      "failing_since" TIMESTAMP WITH TIME ZONE)`);
    // GET /v1/webhooks keyset pages.
    await q.query(`CREATE INDEX "webhook_subscriptions_created_idx" ON "webhook_subscriptions" ("created_at", "id") WHERE "deleted_at" IS NULL`);

    await q.query(`CREATE TABLE "webhook_deliveries" (
      "id" uuid NOT NULL DEFAULT gen_random_uuid(),
      "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "subscription_id" uuid NOT NULL,
      "event_id" uuid NOT NULL,
      "event_position" bigint NOT NULL,
      "event_type" character varying(64) NOT NULL,
      "lane" character varying(160) NOT NULL,
      "status" character varying(16) NOT NULL DEFAULT 'pending',
      "attempts" integer NOT NULL DEFAULT 0,
      "last_status_code" integer,
      "last_error" text,
      "next_attempt_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
      "delivered_at" TIMESTAMP WITH TIME ZONE,
      PRIMARY KEY ("id", "created_at")) PARTITION BY RANGE ("created_at")`);
    // Pending deliveries of a subscription in feed order, per lane (one product's events).
    await q.query(`CREATE INDEX "webhook_deliveries_pending_idx" ON "webhook_deliveries" ("subscription_id", "event_position") WHERE "status" = 'pending'`);
    await q.query(`CREATE INDEX "webhook_deliveries_lane_idx" ON "webhook_deliveries" ("subscription_id", "lane", "event_position") WHERE "status" = 'pending'`);
    // GET /v1/webhooks/:id/deliveries keyset pages.
    await q.query(`CREATE INDEX "webhook_deliveries_list_idx" ON "webhook_deliveries" ("subscription_id", "created_at", "id")`);
    await q.query(`CREATE TABLE "webhook_deliveries_default" PARTITION OF "webhook_deliveries" DEFAULT`);

    // The current month and three ahead; maintain-partitions keeps it so.
    for (const parent of ['change_events', 'product_history', 'webhook_deliveries']) {
      await q.query(`SELECT sync1688_ensure_month_partitions($1, now(), 4)`, [parent]);
    }

    // product.images_ready fires on each not-ready → ready transition (ImageReadiness).
    await q.query(`ALTER TABLE "products" ADD "images_ready" boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "products" DROP COLUMN "images_ready"`);
    await q.query(`DROP TABLE "webhook_deliveries"`);
    await q.query(`DROP TABLE "webhook_subscriptions"`);
    await q.query(`DROP TABLE "product_history"`);
    await q.query(`DROP TABLE "change_events"`);
    await q.query(`DROP TABLE "change_feed_state"`);
    await q.query(`DROP TABLE "change_outbox"`);
    await q.query(`DROP FUNCTION "sync1688_ensure_month_partitions"(text, timestamptz, int)`);
  }
}
