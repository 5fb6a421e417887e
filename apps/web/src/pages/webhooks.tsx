// Webhooks (admin keys, §11): the subscriptions and, for the one picked, its deliveries with a redeliver button.
import { useEffect, useState } from 'preact/hooks';
import { type Page, api, optional, query } from '../api';
import { Badge, Failure, Loading, TableRegion } from '../components/common';
import { dateTime } from '../format';
import type { Webhook, WebhookDelivery } from '../types';

function Deliveries({ webhook }: { webhook: Webhook }) {
  const [items, setItems] = useState<WebhookDelivery[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notes, setNotes] = useState<Record<string, string>>({});
  useEffect(() => {
    setItems(null);
    api<Page<WebhookDelivery>>(`/v1/webhooks/${webhook.id}/deliveries${query({ limit: 50 })}`).then((p) => setItems(p.items), setError);
  }, [webhook.id]);
  async function redeliver(id: string) {
    try {
      await api(`/v1/webhooks/${webhook.id}/deliveries/${id}/redeliver`, { method: 'POST' });
      setNotes((prev) => ({ ...prev, [id]: 'queued again' }));
    } catch (err) {
      setNotes((prev) => ({ ...prev, [id]: (err as Error).message }));
    }
  }
  if (error) return <Failure error={error} />;
  if (!items) return <Loading what="deliveries" />;
  if (items.length === 0) return <p class="muted">No deliveries yet.</p>;
  return (
    <TableRegion label={`deliveries to ${webhook.url}`}>
      <table>
        <thead>
          <tr>
            <th scope="col">event</th>
            <th scope="col">status</th>
            <th scope="col">attempts</th>
            <th scope="col">last answer</th>
            <th scope="col">next / delivered</th>
            <th scope="col">
              <span class="visually-hidden">action</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {items.map((d) => (
            <tr key={d.id}>
              <td>
                <code>{d.type}</code>
              </td>
              <td>
                <Badge>{d.status}</Badge>
              </td>
              <td>{d.attempts}</td>
              <td>{d.lastStatusCode ?? d.lastError ?? '—'}</td>
              <td>{dateTime(d.deliveredAt ?? d.nextAttemptAt)}</td>
              <td>
                {notes[d.id] ? (
                  <span role="status">{notes[d.id]}</span>
                ) : d.status === 'failed' ? (
                  <button type="button" onClick={() => redeliver(d.id)}>
                    Redeliver
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableRegion>
  );
}

export function WebhooksPage() {
  const [hooks, setHooks] = useState<Webhook[] | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<Webhook | null>(null);
  useEffect(() => {
    optional<Page<Webhook>>(`/v1/webhooks${query({ limit: 100 })}`).then((p) => setHooks(p ? p.items : null), setError);
  }, []);
  return (
    <>
      <h1>Webhooks</h1>
      {error ? <Failure error={error} /> : null}
      {hooks === undefined && !error ? <Loading what="subscriptions" /> : null}
      {hooks === null ? <p class="muted">This API has no webhooks.</p> : null}
      {hooks?.length === 0 ? <p class="muted">No subscriptions. Create one with POST /v1/webhooks or `1688sync webhooks create`.</p> : null}
      {hooks?.length ? (
        <ul class="hooks">
          {hooks.map((h) => (
            <li key={h.id}>
              <button type="button" class="link" aria-expanded={open?.id === h.id} onClick={() => setOpen(open?.id === h.id ? null : h)}>
                {h.url}
              </button>{' '}
              {h.enabled ? <Badge tone="ok">enabled</Badge> : <Badge tone="bad">disabled</Badge>} <span class="muted">{h.events.join(', ')}</span>
              {h.description ? <p>{h.description}</p> : null}
              {h.disabledReason ? <p class="error">{h.disabledReason}</p> : null}
              {open?.id === h.id ? <Deliveries webhook={h} /> : null}
            </li>
          ))}
        </ul>
      ) : null}
    </>
  );
}
