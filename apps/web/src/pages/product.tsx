// One product: every image with its variants and sizes, price tiers, SKUs with stock, the price history,
// the change log, similar products from any supplier (§12, when the API has them), and — for admin keys —
// soft delete and restore.
import { useEffect, useState } from 'preact/hooks';
import { type Page, api, optional, query } from '../api';
import { canAdminister, useSession } from '../auth';
import { ChangeLog } from '../components/change-log';
import { Badge, Failure, Loading, TableRegion } from '../components/common';
import { PriceChart } from '../components/price-chart';
import { Thumb } from '../components/thumb';
import { bytes, dateTime, money, priceRange, safeHref, translatedTitle } from '../format';
import type { HistoryPoint, Product, ProductImage, SimilarItem } from '../types';

function ImageCard({ image, title }: { image: ProductImage; title: string }) {
  const variants: { name: string; url?: string; size?: number }[] = [
    { name: 'original', url: image.urls.original, size: image.bytes?.original },
    { name: 'compressed', url: image.urls.compressed, size: image.bytes?.compressed },
    { name: 'thumbnail', url: image.urls.thumbnail, size: image.bytes?.thumbnail },
    { name: 'webp', url: image.urls.webp },
    { name: 'avif', url: image.urls.avif },
  ];
  return (
    <li class="image-card">
      <Thumb src={image.urls.thumbnail ?? image.urls.compressed} thumbhash={image.thumbhash} alt={`${title}: ${image.kind} image ${image.position + 1}`} />
      <div class="image-meta">
        <span class="badges">
          <Badge tone="muted">{image.kind}</Badge>
          <Badge>{image.downloadStatus}</Badge>
          <Badge>{image.processStatus}</Badge>
        </span>
        {image.width && image.height ? (
          <span>
            {image.width}×{image.height}
          </span>
        ) : null}
        <ul class="variants">
          {variants
            .filter((v) => v.url)
            .map((v) => (
              <li key={v.name}>
                <a href={v.url} target="_blank" rel="noopener noreferrer">
                  {v.name}
                </a>{' '}
                {v.size !== undefined ? <span class="muted">{bytes(v.size)}</span> : null}
              </li>
            ))}
        </ul>
        {image.error ? <p class="error">{image.error}</p> : null}
      </div>
    </li>
  );
}

function SimilarProducts({ productId }: { productId: string }) {
  const [items, setItems] = useState<SimilarItem[] | null | undefined>(undefined);
  useEffect(() => {
    optional<{ items: SimilarItem[] }>(`/v1/products/${productId}/similar`).then(
      (r) => setItems(r ? r.items : null),
      () => setItems(null),
    );
  }, [productId]);
  // An API without fingerprints (no /similar route) shows nothing.
  if (items === null || items === undefined) return null;
  return (
    <section aria-labelledby="similar-h">
      <h2 id="similar-h">Similar products (同款)</h2>
      {items.length === 0 ? <p class="muted">None found.</p> : null}
      <ul class="grid">
        {items.map((s) => (
          <li class="card" key={s.product.id}>
            <a class="card-link" href={`#/products/${s.product.id}`}>
              <Thumb src={s.product.thumbnailUrl} alt={s.product.title} />
              <span class="card-title" lang="zh">
                {s.product.title}
              </span>
            </a>
            <span class="card-price">{priceRange(s.product.priceMin, s.product.priceMax)}</span>
            {s.product.supplier ? (
              <a class="card-supplier" href={`#/suppliers/${s.product.supplier.id}`}>
                {s.product.supplier.name ?? 'supplier'}
              </a>
            ) : null}
            <span class="muted">distance {s.distance}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

interface GroupProduct {
  id: string;
  title: string;
  priceMin: number | null;
  priceMax: number | null;
  currency?: string;
  supplier?: { id: string; name: string | null } | null;
}

/** The 同款 group the product belongs to (§12), cheapest first; nothing when the API has no groups or it is in none. */
function SameItemGroup({ productId }: { productId: string }) {
  const [group, setGroup] = useState<{ groupId: string; products: GroupProduct[] } | null>(null);
  useEffect(() => {
    setGroup(null);
    optional<{ groupId: string; products: GroupProduct[] }>(`/v1/products/${productId}/group`).then(setGroup, () => setGroup(null));
  }, [productId]);
  if (!group || !Array.isArray(group.products) || group.products.length < 2) return null;
  return (
    <section aria-labelledby="group-h">
      <h2 id="group-h">The same item from {group.products.length} offers, cheapest first</h2>
      <TableRegion label="the same item, cheapest first">
        <table>
          <thead>
            <tr>
              <th scope="col">offer</th>
              <th scope="col">price</th>
              <th scope="col">supplier</th>
            </tr>
          </thead>
          <tbody>
            {group.products.map((p) => (
              <tr key={p.id}>
                <td lang="zh">{p.id === productId ? p.title : <a href={`#/products/${p.id}`}>{p.title}</a>}</td>
                <td>{priceRange(p.priceMin, p.priceMax, p.currency)}</td>
                <td lang="zh">{p.supplier ? <a href={`#/suppliers/${p.supplier.id}`}>{p.supplier.name ?? 'supplier'}</a> : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableRegion>
    </section>
  );
}

function History({ productId, currency }: { productId: string; currency: string }) {
  const [points, setPoints] = useState<HistoryPoint[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ points: HistoryPoint[] } & Page<never>>(`/v1/products/${productId}/history${query({ limit: 500 })}`).then(
      (r) => setPoints(r.points),
      (err) => (setError(err), setPoints([])),
    );
  }, [productId]);
  if (error) return <Failure error={error} />;
  if (!points) return <Loading what="price history" />;
  return <PriceChart points={points} currency={currency} />;
}

export function ProductPage({ id }: { id: string }) {
  const session = useSession();
  const [product, setProduct] = useState<Product | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [deleted, setDeleted] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);

  useEffect(() => {
    setProduct(null);
    setError(null);
    setDeleted(false);
    api<Product>(`/v1/products/${id}`).then(setProduct, setError);
  }, [id]);

  async function remove() {
    setConfirming(false);
    try {
      await api(`/v1/products/${id}`, { method: 'DELETE' });
      setDeleted(true);
      setNotice('Deleted. Restore brings it back with its images.');
    } catch (err) {
      setNotice(`Delete failed: ${(err as Error).message}`);
    }
  }
  async function restore() {
    try {
      await api(`/v1/products/${id}/restore`, { method: 'POST' });
      setDeleted(false);
      setNotice('Restored.');
      setProduct(await api<Product>(`/v1/products/${id}`));
    } catch (err) {
      setNotice(`Restore failed: ${(err as Error).message}`);
    }
  }

  if (error) return <Failure error={error} />;
  if (!product) return <Loading what="the product" />;
  const isDeleted = deleted || !!product.deletedAt;
  const translated = translatedTitle(product.titleTranslations, navigator.languages);
  const detail = safeHref(product.detailUrl);
  return (
    <article class="product">
      <p>
        <a href="#/products">← Products</a>
      </p>
      <h1 lang="zh">{product.title}</h1>
      {translated ? <p class="translation">{translated}</p> : null}
      <p class="badges">
        {product.status ? <Badge>{product.status}</Badge> : null}
        {product.offerStatus ? <Badge>{product.offerStatus}</Badge> : null}
        <Badge>{product.syncStatus}</Badge>
        {isDeleted ? <Badge>deleted</Badge> : null}
      </p>
      <dl class="facts">
        <dt>price</dt>
        <dd>{priceRange(product.priceMin, product.priceMax, product.currency)}</dd>
        {product.dropshipPrice != null ? (
          <>
            <dt>dropship price</dt>
            <dd>{money(product.dropshipPrice, product.currency)}</dd>
          </>
        ) : null}
        <dt>minimum order</dt>
        <dd>
          {product.moq ?? '—'} {product.unit ?? ''}
        </dd>
        <dt>supplier</dt>
        <dd>{product.supplier ? <a href={`#/suppliers/${product.supplier.id}`}>{product.supplier.name ?? product.supplier.externalId}</a> : '—'}</dd>
        <dt>offer id</dt>
        <dd>{detail ? <a href={detail} target="_blank" rel="noopener noreferrer">{product.externalId}</a> : product.externalId}</dd>
        <dt>category</dt>
        <dd>{product.categoryPath?.join(' › ') ?? product.categoryId ?? '—'}</dd>
        <dt>updated</dt>
        <dd>{dateTime(product.updatedAt)}</dd>
      </dl>
      {canAdminister(session.role) ? (
        <p class="actions">
          {isDeleted ? (
            <button type="button" onClick={restore}>
              Restore
            </button>
          ) : confirming ? (
            <>
              <button type="button" class="danger" onClick={remove}>
                Delete it and its images
              </button>{' '}
              <button type="button" onClick={() => setConfirming(false)}>
                Keep it
              </button>
            </>
          ) : (
            <button type="button" class="danger" onClick={() => setConfirming(true)}>
              Delete
            </button>
          )}
        </p>
      ) : null}
      {notice ? (
        <p role="status" class="notice">
          {notice}
        </p>
      ) : null}

      <section aria-labelledby="images-h">
        <h2 id="images-h">Images ({product.images.length})</h2>
        <ul class="images">
          {product.images.map((image) => (
            <ImageCard image={image} title={product.title} key={image.id} />
          ))}
        </ul>
      </section>

      <section aria-labelledby="tiers-h">
        <h2 id="tiers-h">Price tiers</h2>
        {product.priceTiers?.length ? (
          <TableRegion label="price tiers">
            <table>
              <thead>
                <tr>
                  <th scope="col">from quantity</th>
                  <th scope="col">price</th>
                </tr>
              </thead>
              <tbody>
                {product.priceTiers.map((t) => (
                  <tr key={t.minQuantity}>
                    <td>{t.minQuantity}</td>
                    <td>{money(t.price, product.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableRegion>
        ) : (
          <p class="muted">No quantity breaks.</p>
        )}
      </section>

      <section aria-labelledby="skus-h">
        <h2 id="skus-h">SKUs</h2>
        {product.skus?.length ? (
          <TableRegion label="SKUs">
            <table>
              <thead>
                <tr>
                  <th scope="col">SKU</th>
                  <th scope="col">variant</th>
                  <th scope="col">price</th>
                  <th scope="col">stock</th>
                </tr>
              </thead>
              <tbody>
                {product.skus.map((s, i) => (
                  <tr key={s.externalId ?? i}>
                    <td>{s.externalId ?? '—'}</td>
                    <td lang="zh">
                      {Object.entries(s.attributes ?? {})
                        .map(([k, v]) => `${k}: ${v}`)
                        .join(', ')}
                    </td>
                    <td>{money(s.price, product.currency)}</td>
                    <td>{s.stock ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableRegion>
        ) : (
          <p class="muted">No SKUs.</p>
        )}
      </section>

      <section aria-labelledby="history-h">
        <h2 id="history-h">Price history</h2>
        <History productId={product.id} currency={product.currency} />
      </section>

      <SimilarProducts productId={product.id} />
      <SameItemGroup productId={product.id} />

      <section aria-labelledby="changes-h">
        <h2 id="changes-h">Change log</h2>
        <ChangeLog productId={product.id} />
      </section>
    </article>
  );
}
