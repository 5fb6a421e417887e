// The pipeline: counts by status and queue depths (refreshing), failed images with their errors and — for
// admin keys — a retry button, recent sync records and consistency reports, and a link to Bull Board.
import { useEffect, useState } from 'preact/hooks';
import { type Page, api, query } from '../api';
import { canAdminister, useSession } from '../auth';
import { Badge, Failure, Loading, TableRegion } from '../components/common';
import { bytes, dateTime } from '../format';
import type { ConsistencyReport, ProductImage, Stats, SyncRecord } from '../types';

const REFRESH_MS = 5000;

function Counts({ title, counts }: { title: string; counts: Record<string, number> }) {
  return (
    <div class="counts">
      <h3>{title}</h3>
      <ul>
        {Object.entries(counts).map(([status, n]) => (
          <li key={status}>
            <Badge>{status}</Badge> <span class="count">{n}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

function StatsPanel() {
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const s = await api<Stats>('/v1/stats');
        if (!stopped) {
          setStats(s);
          setError(null);
        }
      } catch (err) {
        if (!stopped) setError(err);
      }
      if (!stopped) timer = setTimeout(tick, REFRESH_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  if (!stats) return error ? <Failure error={error} /> : <Loading what="counts" />;
  const states = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'];
  return (
    <section aria-labelledby="counts-h">
      <h2 id="counts-h">Counts</h2>
      <p class="muted">
        {stats.suppliers.live} suppliers · {stats.products.live} products · {stats.images.live} images · {bytes(stats.storageBytes.total)} stored (refreshes every {REFRESH_MS / 1000} s)
      </p>
      {error ? <Failure error={error} /> : null}
      <div class="counts-row">
        <Counts title="products by sync status" counts={stats.products.bySyncStatus} />
        <Counts title="downloads" counts={stats.images.byDownloadStatus} />
        <Counts title="processing" counts={stats.images.byProcessStatus} />
      </div>
      <h3>Queue depths</h3>
      {stats.queuesError ? <p class="error">{stats.queuesError}</p> : null}
      <TableRegion label="queue depths">
        <table>
          <thead>
            <tr>
              <th scope="col">queue</th>
              {states.map((s) => (
                <th scope="col" key={s}>
                  {s}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {Object.entries(stats.queues).map(([name, counts]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                {states.map((s) => (
                  <td key={s}>{counts ? (counts[s] ?? 0) : '—'}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </TableRegion>
    </section>
  );
}

function FailedImages() {
  const session = useSession();
  const [images, setImages] = useState<ProductImage[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [retried, setRetried] = useState<Record<string, string>>({});
  useEffect(() => {
    Promise.all([
      api<Page<ProductImage & { productId: string }>>(`/v1/images${query({ downloadStatus: 'failed', limit: 50 })}`),
      api<Page<ProductImage & { productId: string }>>(`/v1/images${query({ processStatus: 'failed', limit: 50 })}`),
    ]).then(([a, b]) => setImages([...a.items, ...b.items]), setError);
  }, []);

  async function retry(id: string) {
    setRetried((prev) => ({ ...prev, [id]: 'retrying…' }));
    try {
      const r = await api<{ reset: number; queued: number; warnings: { message: string }[] }>(`/v1/images/${id}/retry`, { method: 'POST' });
      const note = r.warnings.length ? r.warnings.map((w) => w.message).join('; ') : r.queued ? 'queued for another try' : 'nothing to retry';
      setRetried((prev) => ({ ...prev, [id]: note }));
    } catch (err) {
      setRetried((prev) => ({ ...prev, [id]: `retry failed: ${(err as Error).message}` }));
    }
  }

  return (
    <section aria-labelledby="failed-h">
      <h2 id="failed-h">Failed images</h2>
      {error ? <Failure error={error} /> : null}
      {!images && !error ? <Loading what="failed images" /> : null}
      {images?.length === 0 ? <p class="muted">No failed images.</p> : null}
      {images?.length ? (
        <ul class="failed">
          {images.map((image) => {
            const productId = (image as ProductImage & { productId: string }).productId;
            return (
              <li key={image.id} class="failed-image">
                <span class="badges">
                  <Badge tone="muted">{image.kind}</Badge>
                  <Badge>{image.downloadStatus}</Badge>
                  <Badge>{image.processStatus}</Badge>
                </span>
                <a href={`#/products/${productId}`}>product</a> <span class="muted">after {image.attempts} attempt(s)</span>
                <p class="error">{image.error ?? 'no error recorded'}</p>
                <p class="source">{image.sourceUrl}</p>
                {canAdminister(session.role) ? (
                  retried[image.id] ? (
                    <p role="status">{retried[image.id]}</p>
                  ) : (
                    <button type="button" onClick={() => retry(image.id)} aria-label={`Retry image ${image.position + 1} (${image.kind})`}>
                      Retry
                    </button>
                  )
                ) : null}
              </li>
            );
          })}
        </ul>
      ) : null}
    </section>
  );
}

function SyncRecords() {
  const [records, setRecords] = useState<SyncRecord[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<Page<SyncRecord>>(`/v1/sync-records${query({ limit: 10 })}`).then((p) => setRecords(p.items), setError);
  }, []);
  if (error) return <Failure error={error} />;
  if (!records) return <Loading what="sync records" />;
  return (
    <TableRegion label="recent sync records">
      <table>
        <thead>
          <tr>
            <th scope="col">started</th>
            <th scope="col">kind</th>
            <th scope="col">source</th>
            <th scope="col">status</th>
            <th scope="col">received</th>
            <th scope="col">created</th>
            <th scope="col">updated</th>
            <th scope="col">unchanged</th>
            <th scope="col">failed</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={r.id}>
              <td>{dateTime(r.startedAt)}</td>
              <td>{r.kind}</td>
              <td>{r.source ?? '—'}</td>
              <td>
                <Badge>{r.status}</Badge>
              </td>
              <td>{r.counts.received}</td>
              <td>{r.counts.created}</td>
              <td>{r.counts.updated}</td>
              <td>{r.counts.unchanged}</td>
              <td>{r.counts.failed}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableRegion>
  );
}

function Reports() {
  const [reports, setReports] = useState<ConsistencyReport[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<Page<ConsistencyReport>>(`/v1/maintenance/reports${query({ limit: 5 })}`).then((p) => setReports(p.items), setError);
  }, []);
  if (error) return <Failure error={error} />;
  if (!reports) return <Loading what="consistency reports" />;
  if (reports.length === 0) return <p class="muted">No consistency check has run yet.</p>;
  return (
    <ul class="reports">
      {reports.map((r) => (
        <li key={r.id}>
          <p>
            {dateTime(r.startedAt)} <Badge>{r.status}</Badge> {r.fix ? <Badge tone="info">fix</Badge> : null} — {r.summary.critical} critical, {r.summary.warning} warning(s),{' '}
            {r.summary.info} info, {r.summary.fixed} fixed
          </p>
          <ul>
            {r.findings
              .filter((f) => f.count > 0)
              .map((f) => (
                <li key={f.check}>
                  <Badge tone={f.severity === 'critical' ? 'bad' : f.severity === 'warning' ? 'warn' : 'info'}>{f.severity}</Badge> {f.check}: {f.count} — {f.suggestedFix}
                </li>
              ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}

export function PipelinePage() {
  return (
    <>
      <h1>Pipeline</h1>
      <p>
        Jobs one by one: <a href="/admin/queues">Bull Board</a> (its own login: ADMIN_USER / ADMIN_PASSWORD).
      </p>
      <StatsPanel />
      <FailedImages />
      <section aria-labelledby="sync-h">
        <h2 id="sync-h">Recent sync records</h2>
        <SyncRecords />
      </section>
      <section aria-labelledby="reports-h">
        <h2 id="reports-h">Consistency reports</h2>
        <Reports />
      </section>
    </>
  );
}
