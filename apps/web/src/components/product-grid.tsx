// A grid of product cards with keyset "load more". The thumbnail comes from the list item (thumbnailUrl and
// thumbhash, §12) when the API sends them — one request per page. An API without them still gets pictures:
// the cards then read each product's main image, a few at a time.
import { useEffect, useState } from 'preact/hooks';
import { type Page, api, query } from '../api';
import { priceRange, translatedTitle } from '../format';
import type { Product, ProductListItem, Supplier } from '../types';
import { Badge, Failure, Loading } from './common';
import { Thumb } from './thumb';

const PAGE_SIZE = 24;

interface CardExtras {
  thumbnailUrl: string | null;
  thumbhash: string | null;
}

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

/** Runs `work` on each item, at most `width` at once. */
async function eachLimited<T>(items: T[], width: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

export function ProductGrid({ filters, label }: { filters: Record<string, string | undefined>; label: string }) {
  const [items, setItems] = useState<ProductListItem[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [extras, setExtras] = useState<Record<string, CardExtras>>({});
  const [suppliers, setSuppliers] = useState<Record<string, string | null>>({});
  const key = JSON.stringify(filters);

  async function load(after: string | null, reset: boolean) {
    setLoading(true);
    setError(null);
    try {
      const page = await api<Page<ProductListItem>>(`/v1/products${query({ ...filters, limit: PAGE_SIZE, cursor: after })}`);
      setItems((prev) => (reset ? page.items : [...prev, ...page.items]));
      setCursor(page.nextCursor);
      void fillIn(page.items);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }

  async function fillIn(page: ProductListItem[]) {
    for (const id of new Set(page.map((p) => p.supplierId).filter((s): s is string => !!s))) {
      void supplierName(id).then((name) => setSuppliers((prev) => ({ ...prev, [id]: name })));
    }
    const missing = page.filter((p) => !('thumbnailUrl' in p));
    await eachLimited(missing, 4, async (p) => {
      try {
        const full = await api<Product>(`/v1/products/${p.id}`);
        const main = full.images.find((i) => i.urls.thumbnail) ?? null;
        setExtras((prev) => ({ ...prev, [p.id]: { thumbnailUrl: main?.urls.thumbnail ?? null, thumbhash: main?.thumbhash ?? null } }));
      } catch {
        setExtras((prev) => ({ ...prev, [p.id]: { thumbnailUrl: null, thumbhash: null } }));
      }
    });
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
          const extra = 'thumbnailUrl' in p ? { thumbnailUrl: p.thumbnailUrl ?? null, thumbhash: p.thumbhash ?? null } : extras[p.id];
          const translated = translatedTitle(p.titleTranslations, languages);
          return (
            <li class="card" key={p.id}>
              <a href={`#/products/${p.id}`} class="card-link">
                <Thumb src={extra?.thumbnailUrl} thumbhash={extra?.thumbhash} alt={p.title} />
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
