// The catalogue page (SPEC §13, docs/catalogue-page.md): asks who the session is (GET /v1/auth/whoami),
// asks for an API key when one is required, then shows the view the URL fragment names.
import { render } from 'preact';
import type { TargetedSubmitEvent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, type Role, api, forgetKey, onUnauthorized, storeKey } from './api';
import { type Session, SessionContext, canAdminister } from './auth';
import { Failure, Loading } from './components/common';
import { PipelinePage } from './pages/pipeline';
import { ProductPage } from './pages/product';
import { ProductsPage } from './pages/products';
import { SupplierPage, SuppliersPage } from './pages/suppliers';
import { WebhooksPage } from './pages/webhooks';
import { type View, parseHash } from './route';
import './styles.css';

type WhoAmI = { role: Role; authRequired: boolean };

function KeyPrompt({ onKey, wrong }: { onKey: (key: string) => void; wrong: boolean }) {
  function submit(event: TargetedSubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const key = String(new FormData(event.currentTarget).get('key') ?? '').trim();
    if (key) onKey(key);
  }
  return (
    <main id="main" class="key-prompt">
      <h1>1688sync catalogue</h1>
      <form onSubmit={submit}>
        <label for="key">API key</label>
        <p id="key-help" class="muted">
          This API needs a key (one of API_KEYS). It is kept for this browser tab's session only.
        </p>
        {wrong ? (
          <p class="error" role="alert">
            That key was not accepted; try another.
          </p>
        ) : null}
        <input id="key" name="key" type="password" autoComplete="off" required aria-describedby="key-help" autoFocus />
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

const SECTIONS = [
  { path: '#/products', label: 'Products', views: ['products', 'product'] },
  { path: '#/suppliers', label: 'Suppliers', views: ['suppliers', 'supplier'] },
  { path: '#/pipeline', label: 'Pipeline', views: ['pipeline'] },
  { path: '#/webhooks', label: 'Webhooks', views: ['webhooks'], admin: true },
];

function Screen({ view, session }: { view: View; session: Session }) {
  switch (view.name) {
    case 'products':
      return <ProductsPage params={view.params} />;
    case 'product':
      return <ProductPage id={view.id} />;
    case 'suppliers':
      return <SuppliersPage />;
    case 'supplier':
      return <SupplierPage id={view.id} />;
    case 'pipeline':
      return <PipelinePage />;
    case 'webhooks':
      return canAdminister(session.role) ? <WebhooksPage /> : <p>Webhooks need an admin key.</p>;
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            Nothing at this address. <a href="#/products">See the products.</a>
          </p>
        </>
      );
  }
}

function App() {
  const [who, setWho] = useState<WhoAmI | null>(null);
  const [needKey, setNeedKey] = useState(false);
  const [wrongKey, setWrongKey] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [view, setView] = useState<View>(() => parseHash(location.hash));

  async function identify() {
    try {
      setWho(await api<WhoAmI>('/v1/auth/whoami'));
      setNeedKey(false);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setNeedKey(true);
      else setError(err);
    }
  }

  useEffect(() => {
    onUnauthorized(() => {
      setWho(null);
      setNeedKey(true);
    });
    const onHash = () => {
      setView(parseHash(location.hash));
      window.scrollTo(0, 0);
    };
    window.addEventListener('hashchange', onHash);
    void identify();
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    const section = SECTIONS.find((s) => s.views.includes(view.name));
    document.title = section ? `${section.label} · 1688sync` : '1688sync';
  }, [view]);

  if (needKey) {
    return (
      <KeyPrompt
        wrong={wrongKey}
        onKey={async (key) => {
          storeKey(key);
          setWrongKey(true); // shown only if this key comes back 401 too
          await identify();
        }}
      />
    );
  }
  if (error) {
    return (
      <main id="main">
        <Failure error={error} />
      </main>
    );
  }
  if (!who) {
    return (
      <main id="main">
        <Loading what="the catalogue" />
      </main>
    );
  }
  const session: Session = {
    ...who,
    signOut: () => {
      forgetKey();
      setWrongKey(false);
      setWho(null);
      setNeedKey(true);
    },
  };
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/products">
          1688sync
        </a>
        <nav aria-label="sections">
          <ul>
            {SECTIONS.filter((s) => !s.admin || canAdminister(who.role)).map((s) => (
              <li key={s.path}>
                <a href={s.path} aria-current={s.views.includes(view.name) ? 'page' : undefined}>
                  {s.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          {who.role} key
          {who.authRequired ? (
            <button type="button" class="link" onClick={session.signOut}>
              Sign out
            </button>
          ) : null}
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Screen view={view} session={session} />
      </main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
