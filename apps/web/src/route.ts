// The page's address lives in the URL fragment (#/products?q=连衣裙), so a search or a product can be
// shared as a link, and the API serves one document at /ui whatever the view.
export type View =
  | { name: 'products'; params: URLSearchParams }
  | { name: 'product'; id: string }
  | { name: 'suppliers'; params: URLSearchParams }
  | { name: 'supplier'; id: string }
  | { name: 'pipeline' }
  | { name: 'webhooks' }
  | { name: 'not-found'; path: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseHash(hash: string): View {
  const raw = hash.replace(/^#/, '') || '/products';
  const [pathPart, search = ''] = raw.split('?', 2);
  const params = new URLSearchParams(search);
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  const [section, id] = parts;
  if (parts.length <= 1 && (section === undefined || section === 'products')) return { name: 'products', params };
  if (section === 'products' && parts.length === 2 && UUID.test(id)) return { name: 'product', id };
  if (section === 'suppliers' && parts.length === 1) return { name: 'suppliers', params };
  if (section === 'suppliers' && parts.length === 2 && UUID.test(id)) return { name: 'supplier', id };
  if (section === 'pipeline' && parts.length === 1) return { name: 'pipeline' };
  if (section === 'webhooks' && parts.length === 1) return { name: 'webhooks' };
  return { name: 'not-found', path: pathPart };
}

/** The fragment of a list view with the given query: empty values are left out, so links stay short. */
export function hashFor(path: string, params: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}
