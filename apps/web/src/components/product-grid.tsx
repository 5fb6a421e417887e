// A grid of product cards with keyset "load more". Each card's thumbnail and its ThumbHash placeholder come
// with the list item (thumbnailUrl and thumbhash, §12): one request per page.
import { useEffect, useState } from 'preact/hooks';
import { type Page, api, query } from '../api';
import { priceRange, translatedTitle } from '../format';
import type { ProductListItem, Supplier } from '../types';
import { Badge, Failure, Loading } from './common';
import { Thumb } from './thumb';

const PAGE_SIZE = 24;

const supplierNames = new Map<string, Promise<string | null>>();
function supplierName(id: string): Promise<string | null> {
  let name = supplierNames.get(id);
  if (!name) {
    name = api<Supplier>(`/v1/suppliers/${id}`).then(
      (s) => s.name ?? s.externalId,
      () => null,
    );
    supplierNames.set(id, name);
  }
  return name;
}

export function ProductGrid({ filters, label }: { filters: Record<string, string | undefined>; label: string }) {
  const [items, setItems] = useState<ProductListItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [suppliers, setSuppliers] = useState<Record<string, string | null>>({});
  const key = JSON.stringify(filters);

  async function load(after: string | null, reset: boolean) {
    setLoading(true);
    setError(null);
    try {
      const page = await api<Page<ProductListItem>>(`/v1/products${query({ ...filters, limit: PAGE_SIZE, cursor: after })}`);
      setItems((prev) => (reset ? page.items : [...prev, ...page.items]));
      setCursor(page.nextCursor);
      fillInSuppliers(page.items);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }

  function fillInSuppliers(page: ProductListItem[]) {
    for (const id of new Set(page.map((p) => p.supplierId).filter((s): s is string => !!s))) {
      void supplierName(id).then((name) => setSuppliers((prev) => ({ ...prev, [id]: name })));
    }
  }

  useEffect(() => {
    setItems([]);
    setCursor(null);
    void load(null, true);
  }, [key]);

  const languages = typeof navigator === 'undefined' ? ['en'] : navigator.languages;
  return (
    <section aria-label={label}>
      {error ? <Failure error={error} /> : null}
      {!loading && !error && items.length === 0 ? <p class="muted">No products match.</p> : null}
      <ul class="grid" aria-live="polite">
        {items.map((p) => {
          const translated = translatedTitle(p.titleTranslations, languages);
          return (
            <li class="card" key={p.id}>
              <a href={`#/products/${p.id}`} class="card-link">
                <Thumb src={p.thumbnailUrl} thumbhash={p.thumbhash} alt={p.title} />
                <span class="card-title" lang="zh">
                  {p.title}
                </span>
              </a>
              {translated ? <span class="card-translation">{translated}</span> : null}
              <span class="card-price">{priceRange(p.priceMin, p.priceMax, p.currency)}</span>
              {p.supplierId ? (
                <a class="card-supplier" href={`#/suppliers/${p.supplierId}`}>
                  {suppliers[p.supplierId] ?? 'supplier'}
                </a>
              ) : null}
              <span class="badges">
                {p.status ? <Badge>{p.status}</Badge> : null}
                {p.offerStatus && p.offerStatus !== 'published' ? <Badge tone="warn">{p.offerStatus}</Badge> : null}
                <Badge>{p.syncStatus}</Badge>
                {p.deletedAt ? <Badge>deleted</Badge> : null}
              </span>
            </li>
          );
        })}
      </ul>
      {loading ? <Loading what="products" /> : null}
      {cursor && !loading ? (
        <button type="button" class="more" onClick={() => load(cursor, false)}>
          Load more
        </button>
      ) : null}
    </section>
  );
}
