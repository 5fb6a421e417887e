// `1688sync changes tail [--types t,…] [--after <cursor>] [--json]`: follows the change feed like
// `tail -f`, from its current end (or after a cursor of the feed), one line per event (with --json, the event itself as one JSON line). Stops
// on Ctrl-C or SIGTERM. Events reach the feed through the maintenance worker's sequencer, a
// fraction of a second after their change commits.
import type { Config } from '@1688sync/config';
import { CHANGE_EVENT_TYPES, type ChangeEvent, ChangeFeedRepository, isChangeEventType } from '@1688sync/db';
import type { Output } from '../output';
import { UsageError } from '../usage-error';
import { withMaintenanceDeps } from './maintenance-deps';

const POLL_MS = 500;

export interface TailOptions {
  types?: string;
  /** A cursor of the feed (GET /v1/changes' nextCursor) to start after, instead of the end. */
  after?: string;
  json?: boolean;
  /** Ends the tail (tests); by default SIGINT and SIGTERM do. */
  signal?: AbortSignal;
}

export async function changesCommand(config: Config, out: Output, args: string[], options: TailOptions): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'tail') throw new UsageError(`changes takes one subcommand, tail; got ${JSON.stringify(sub ?? '')}`);
  if (rest.length) throw new UsageError(`changes tail takes no arguments, got ${rest.map((r) => JSON.stringify(r)).join(' ')}`);
  const types = options.types?.split(',').map((t) => t.trim()).filter(Boolean);
  const unknown = types?.filter((t) => !isChangeEventType(t)) ?? [];
  if (unknown.length) throw new UsageError(`--types: unknown event type(s) ${unknown.join(', ')}; known: ${CHANGE_EVENT_TYPES.join(', ')}`);

  const stop = options.signal ?? signalOnExit();
  return withMaintenanceDeps(config, { needsRedis: false }, async ({ dataSource }) => {
    const feed = new ChangeFeedRepository(dataSource.manager);
    let cursor = options.after ?? (await feed.head());
    if (!options.json) out.info(`following the change feed${types ? ` (${types.join(', ')})` : ''}; Ctrl-C to stop`);
    while (!stop.aborted) {
      const page = await feed.page({ after: cursor, types, limit: 1000 });
      for (const event of page.items) out.print(options.json ? JSON.stringify(event) : describe(event));
      cursor = page.nextCursor;
      if (page.items.length < 1000) await sleep(POLL_MS, stop);
    }
    return 0;
  });
}

/** One line: when, what, which offer, and the gist of the change. */
function describe(e: ChangeEvent): string {
  const d = e.data as Record<string, unknown>;
  let gist = '';
  if (e.type === 'product.updated' || e.type === 'supplier.updated') gist = (d.changedFields as string[]).join(', ');
  else if (e.type === 'product.price_changed') {
    const before = (d.before as { priceMin: number | null }).priceMin;
    const after = (d.after as { priceMin: number | null }).priceMin;
    gist = `${before} → ${after}${d.percent === null ? '' : ` (${(d.percent as number) > 0 ? '+' : ''}${d.percent} %)`}`;
  } else if (['product.stock_changed', 'product.out_of_stock', 'product.restocked'].includes(e.type)) gist = `stock ${d.totalBefore} → ${d.totalAfter}`;
  else if (e.type === 'product.images_ready') gist = `${d.processed}/${d.images} images processed`;
  return [e.occurredAt, e.type, e.externalId, gist, e.source ? `(${e.source})` : ''].filter(Boolean).join('  ');
}

function signalOnExit(): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
