// A product's change log from the change feed (GET /v1/changes?productId=, §11), oldest first.
import { useEffect, useState } from 'preact/hooks';
import { type Page, api, query } from '../api';
import { dateTime } from '../format';
import type { ChangeEvent } from '../types';
import { Failure, Loading, TableRegion } from './common';

/** One line saying what an event changed, from its data (never as HTML). */
export function describeChange(event: ChangeEvent): string {
  const d = event.data as Record<string, unknown>;
  switch (event.type) {
    case 'product.updated':
      return `changed ${(d.changedFields as string[] | undefined)?.join(', ') ?? 'fields'}`;
    case 'product.price_changed': {
      const before = d.before as { priceMin?: number | null } | undefined;
      const after = d.after as { priceMin?: number | null } | undefined;
      const pct = typeof d.percent === 'number' ? ` (${d.percent > 0 ? '+' : ''}${d.percent}%)` : '';
      return `price from ${before?.priceMin ?? '—'} to ${after?.priceMin ?? '—'}${pct}`;
    }
    case 'product.stock_changed':
    case 'product.out_of_stock':
    case 'product.restocked':
      return `stock from ${String(d.totalBefore ?? '—')} to ${String(d.totalAfter ?? '—')}`;
    case 'product.images_ready':
      return `${String(d.processed)} of ${String(d.images)} images ready`;
    case 'product.group_changed':
      return `group ${String(d.previousGroupId ?? 'none')} → ${String(d.groupId ?? 'none')}`;
    default:
      return '';
  }
}

const LIMIT = 100;

export function ChangeLog({ productId }: { productId: string }) {
  const [events, setEvents] = useState<ChangeEvent[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function load(after: string | null) {
    try {
      const page = await api<Page<ChangeEvent> & { nextCursor: string }>(`/v1/changes${query({ productId, limit: LIMIT, after })}`);
      setEvents((prev) => [...(after ? (prev ?? []) : []), ...page.items]);
      setNext(page.nextCursor);
      setMore(page.items.length === LIMIT);
    } catch (err) {
      setError(err);
    }
  }
  useEffect(() => {
    setEvents(null);
    void load(null);
  }, [productId]);

  if (error) return <Failure error={error} />;
  if (!events) return <Loading what="changes" />;
  if (events.length === 0) return <p class="muted">No changes recorded (or older than the retention).</p>;
  return (
    <>
      <TableRegion label="change log">
        <table>
          <thead>
            <tr>
              <th scope="col">when</th>
              <th scope="col">event</th>
              <th scope="col">what</th>
              <th scope="col">source</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.id}>
                <td>{dateTime(e.occurredAt)}</td>
                <td>
                  <code>{e.type}</code>
                </td>
                <td>{describeChange(e)}</td>
                <td>{e.source ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableRegion>
      {more && next ? (
        <button type="button" onClick={() => load(next)}>
          Load more changes
        </button>
      ) : null}
    </>
  );
}
