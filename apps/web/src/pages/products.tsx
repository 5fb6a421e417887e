// Products: the Chinese search box and the filters of GET /v1/products, kept in the address so a search can
// be shared, over a grid of cards with "load more".
import type { TargetedSubmitEvent } from 'preact';
import { useSession } from '../auth';
import { ProductGrid } from '../components/product-grid';
import { hashFor } from '../route';

export const SORTS = ['relevance', '-updatedAt', 'updatedAt', '-createdAt', 'createdAt', 'priceMin', '-priceMin', '-salesCount'] as const;
const SORT_LABELS: Record<string, string> = {
  '': 'best match (with a search), else newest',
  relevance: 'relevance',
  '-updatedAt': 'recently updated',
  updatedAt: 'least recently updated',
  '-createdAt': 'newest',
  createdAt: 'oldest',
  priceMin: 'price, low to high',
  '-priceMin': 'price, high to low',
  '-salesCount': 'best selling',
};
export const FILTERS = ['q', 'supplierId', 'categoryId', 'priceMin', 'priceMax', 'syncStatus', 'updatedSince', 'sort', 'includeDeleted'] as const;

export function ProductsPage({ params }: { params: URLSearchParams }) {
  const session = useSession();
  const filters: Record<string, string | undefined> = {};
  for (const name of FILTERS) filters[name] = params.get(name) ?? undefined;

  function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const next: Record<string, string | undefined> = {};
    for (const name of FILTERS) {
      const v = form.get(name);
      next[name] = typeof v === 'string' && v.trim() ? v.trim() : undefined;
    }
    if (next.updatedSince && /^\d{4}-\d{2}-\d{2}$/.test(next.updatedSince)) next.updatedSince = `${next.updatedSince}T00:00:00Z`;
    location.hash = hashFor('/products', next);
  }

  return (
    <>
      <h1>Products</h1>
      <form class="search" role="search" onSubmit={submit} key={params.toString()}>
        <div class="search-main">
          <label for="q">Search titles and attributes</label>
          <input id="q" name="q" type="search" lang="zh" placeholder="连衣裙" defaultValue={filters.q} maxLength={200} />
          <button type="submit">Search</button>
        </div>
        <details class="filters" open={FILTERS.some((f) => f !== 'q' && filters[f])}>
          <summary>Filters</summary>
          <div class="filter-grid">
            <label>
              Supplier id
              <input name="supplierId" defaultValue={filters.supplierId} pattern="[0-9a-fA-F-]{36}" title="a supplier UUID" />
            </label>
            <label>
              Category id
              <input name="categoryId" defaultValue={filters.categoryId} maxLength={128} />
            </label>
            <label>
              Price from (¥)
              <input name="priceMin" type="number" min="0" step="0.01" defaultValue={filters.priceMin} />
            </label>
            <label>
              Price to (¥)
              <input name="priceMax" type="number" min="0" step="0.01" defaultValue={filters.priceMax} />
            </label>
            <label>
              Sync status
              <select name="syncStatus" defaultValue={filters.syncStatus ?? ''}>
                <option value="">any</option>
                <option value="pending">pending</option>
                <option value="synced">synced</option>
                <option value="failed">failed</option>
              </select>
            </label>
            <label>
              Updated since
              <input name="updatedSince" type="date" defaultValue={filters.updatedSince?.slice(0, 10)} />
            </label>
            <label>
              Sort
              <select name="sort" defaultValue={filters.sort ?? ''}>
                {['', ...SORTS].map((s) => (
                  <option value={s} key={s}>
                    {SORT_LABELS[s]}
                  </option>
                ))}
              </select>
            </label>
            {session.role === 'admin' ? (
              <label class="check">
                <input name="includeDeleted" type="checkbox" value="true" defaultChecked={filters.includeDeleted === 'true'} />
                include deleted
              </label>
            ) : null}
          </div>
        </details>
      </form>
      <ProductGrid filters={filters} label="search results" />
    </>
  );
}
