// Suppliers: the list (keyset "load more") and one supplier with its products.
import { useEffect, useState } from 'preact/hooks';
import { type Page, api, query } from '../api';
import { Badge, Failure, Loading, TableRegion } from '../components/common';
import { ProductGrid } from '../components/product-grid';
import { safeHref } from '../format';
import type { Supplier } from '../types';

const place = (s: Supplier) => [s.province, s.city].filter(Boolean).join(' ') || '—';
const percent = (v: number | null) => (v === null ? '—' : `${Math.round(v * 100)}%`);

export function SuppliersPage() {
  const [items, setItems] = useState<Supplier[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);

  async function load(after: string | null) {
    setLoading(true);
    try {
      const page = await api<Page<Supplier>>(`/v1/suppliers${query({ limit: 50, cursor: after })}`);
      setItems((prev) => (after ? [...prev, ...page.items] : page.items));
      setCursor(page.nextCursor);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }
  useEffect(() => void load(null), []);

  return (
    <>
      <h1>Suppliers</h1>
      {error ? <Failure error={error} /> : null}
      <TableRegion label="suppliers">
        <table>
          <thead>
            <tr>
              <th scope="col">shop</th>
              <th scope="col">where</th>
              <th scope="col">products</th>
              <th scope="col">rating</th>
              <th scope="col">repurchase</th>
              <th scope="col">badges</th>
            </tr>
          </thead>
          <tbody>
            {items.map((s) => (
              <tr key={s.id}>
                <td lang="zh">
                  <a href={`#/suppliers/${s.id}`}>{s.name ?? s.externalId}</a> {s.isStub ? <Badge tone="warn">stub</Badge> : null}
                </td>
                <td lang="zh">{place(s)}</td>
                <td>{s.productCount}</td>
                <td>{s.ratings.overall ?? '—'}</td>
                <td>{percent(s.repurchaseRate)}</td>
                <td lang="zh">{s.badges?.join(', ') ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableRegion>
      {loading ? <Loading what="suppliers" /> : null}
      {cursor && !loading ? (
        <button type="button" class="more" onClick={() => load(cursor)}>
          Load more
        </button>
      ) : null}
    </>
  );
}

export function SupplierPage({ id }: { id: string }) {
  const [supplier, setSupplier] = useState<Supplier | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setSupplier(null);
    api<Supplier>(`/v1/suppliers/${id}`).then(setSupplier, setError);
  }, [id]);
  if (error) return <Failure error={error} />;
  if (!supplier) return <Loading what="the supplier" />;
  const shop = safeHref(supplier.shopUrl);
  return (
    <>
      <p>
        <a href="#/suppliers">← Suppliers</a>
      </p>
      <h1 lang="zh">{supplier.name ?? supplier.externalId}</h1>
      <dl class="facts">
        <dt>company</dt>
        <dd lang="zh">{supplier.companyName ?? '—'}</dd>
        <dt>where</dt>
        <dd lang="zh">{place(supplier)}</dd>
        <dt>member id</dt>
        <dd>{shop ? <a href={shop} target="_blank" rel="noopener noreferrer">{supplier.externalId}</a> : supplier.externalId}</dd>
        <dt>years on 1688</dt>
        <dd>{supplier.yearsOnPlatform ?? '—'}</dd>
        <dt>rating</dt>
        <dd>{supplier.ratings.overall ?? '—'}</dd>
        <dt>repurchase / response</dt>
        <dd>
          {percent(supplier.repurchaseRate)} / {percent(supplier.responseRate)}
        </dd>
        <dt>products</dt>
        <dd>{supplier.productCount}</dd>
      </dl>
      <h2>Products</h2>
      <ProductGrid filters={{ supplierId: supplier.id, sort: '-updatedAt' }} label={`products of ${supplier.name ?? supplier.externalId}`} />
    </>
  );
}
