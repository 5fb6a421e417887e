// `1688sync webhooks list|create|delete|deliveries`: the webhook subscriptions and their
// deliveries from the command line — the same repositories, URL check and secret generation as
// the API's /v1/webhooks routes (docs/changes.md, Webhooks). Delivery itself is the maintenance
// worker's.
import type { Config } from '@1688sync/config';
import { isUuid } from '@1688sync/core';
import { CHANGE_EVENT_TYPES, Repositories, isChangeEventType, WEBHOOK_DELIVERY_STATUSES, type WebhookDeliveryStatus } from '@1688sync/db';
import { InvalidWebhookUrlError, checkWebhookUrl, generateWebhookSecret } from '@1688sync/webhooks';
import type { Output } from '../output';
import { UsageError } from '../usage-error';
import { withMaintenanceDeps } from './maintenance-deps';

export interface WebhooksOptions {
  events?: string;
  description?: string;
  excludeSources?: string;
  status?: string;
  json?: boolean;
}

/** How many rows `list` and `deliveries` show. */
const SHOWN = 200;

const list = (value: string | undefined) => (value ?? '').split(',').map((v) => v.trim()).filter(Boolean);

function eventsOption(value: string | undefined): string[] {
  const events = list(value);
  if (!events.length) throw new UsageError(`webhooks create needs --events <type,…> (${CHANGE_EVENT_TYPES.join(', ')}, or *)`);
  const unknown = events.filter((e) => e !== '*' && !isChangeEventType(e));
  if (unknown.length) throw new UsageError(`--events: unknown event type(s) ${unknown.map((e) => JSON.stringify(e)).join(', ')}; known: ${CHANGE_EVENT_TYPES.join(', ')}, or *`);
  return [...new Set(events)];
}

function idArgument(command: string, args: string[]): string {
  if (args.length !== 1 || !isUuid(args[0])) throw new UsageError(`webhooks ${command} takes one subscription id (a UUID)`);
  return args[0].toLowerCase();
}

export async function webhooksCommand(config: Config, out: Output, [sub, ...args]: string[], o: WebhooksOptions): Promise<number> {
  const only = (allowed: (keyof WebhooksOptions)[]) => {
    const refused = (Object.keys(o) as (keyof WebhooksOptions)[]).filter((k) => o[k] !== undefined && !allowed.includes(k));
    if (refused.length) throw new UsageError(`webhooks ${sub} does not take ${refused.map((k) => `--${k === 'excludeSources' ? 'exclude-sources' : k}`).join(', ')}`);
  };
  switch (sub) {
    case 'list': {
      only(['json']);
      if (args.length) throw new UsageError('webhooks list takes no arguments');
      return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
        const { items } = await new Repositories(deps.dataSource.manager).webhooks.list({ limit: SHOWN });
        if (o.json) out.print(JSON.stringify(items, null, 2));
        else if (!items.length) out.info('webhooks: no subscriptions (create one with `1688sync webhooks create <url> --events <type,…>`)');
        else out.table([['id', 'url', 'events', 'enabled', 'disabled because'], ...items.map((s) => [s.id, s.url, s.events.join(','), s.enabled ? 'yes' : 'no', s.disabledReason ?? ''])]);
        return 0;
      });
    }
    case 'create': {
      only(['events', 'description', 'excludeSources', 'json']);
      if (args.length !== 1) throw new UsageError('webhooks create takes one URL');
      const events = eventsOption(o.events);
      let url: string;
      try {
        url = checkWebhookUrl(args[0], config.webhooks.allowHosts);
      } catch (err) {
        if (err instanceof InvalidWebhookUrlError) throw new UsageError(err.message);
        throw err;
      }
      return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
        const secret = generateWebhookSecret();
        const created = await new Repositories(deps.dataSource.manager).webhooks.create({
          url,
          events,
          secret,
          description: o.description ?? null,
          excludeSources: list(o.excludeSources),
        });
        if (o.json) out.print(JSON.stringify({ ...created, secret }, null, 2));
        else {
          out.info(`webhooks: subscription ${created.id} created for ${created.url} (${events.join(', ')})`);
          out.info(`webhooks: signing secret (shown only now): ${secret}`);
        }
        return 0;
      });
    }
    case 'delete': {
      only([]);
      const id = idArgument('delete', args);
      return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
        if (!(await new Repositories(deps.dataSource.manager).webhooks.softDelete(id))) {
          out.error(`webhook subscription ${id} not found`);
          return 1;
        }
        out.info(`webhooks: subscription ${id} deleted; nothing more is sent to it`);
        return 0;
      });
    }
    case 'deliveries': {
      only(['status', 'json']);
      const id = idArgument('deliveries', args);
      if (o.status !== undefined && !(WEBHOOK_DELIVERY_STATUSES as readonly string[]).includes(o.status)) {
        throw new UsageError(`--status must be one of ${WEBHOOK_DELIVERY_STATUSES.join(', ')}, got ${JSON.stringify(o.status)}`);
      }
      return withMaintenanceDeps(config, { needsRedis: false }, async (deps) => {
        const repos = new Repositories(deps.dataSource.manager);
        if (!(await repos.webhooks.get(id))) {
          out.error(`webhook subscription ${id} not found`);
          return 1;
        }
        const { items } = await repos.webhookDeliveries.list(id, { status: o.status as WebhookDeliveryStatus | undefined, limit: SHOWN });
        if (o.json) out.print(JSON.stringify(items, null, 2));
        else out.table([['id', 'type', 'status', 'attempts', 'last status', 'created', 'last error'], ...items.map((d) => [d.id, d.type, d.status, d.attempts, d.lastStatusCode ?? '', d.createdAt, (d.lastError ?? '').slice(0, 80)])]);
        return 0;
      });
    }
    default:
      throw new UsageError(sub ? `unknown webhooks command ${JSON.stringify(sub)}; use list, create, delete or deliveries` : 'webhooks needs list, create, delete or deliveries');
  }
}
