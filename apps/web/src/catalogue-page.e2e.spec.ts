// The catalogue page in a real browser (SPEC §13): Debian's Chromium against the real API and image workers
// as processes, on a fresh database with the sample catalogue ingested and processed. Screenshots of each
// page go to apps/web/test-artifacts/ (git-ignored).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Database, migrateUp } from '@1688sync/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
  type PhotoServer,
  type TestDatabase,
  type TestQueuePrefix,
  createTestDatabase,
  createTestQueuePrefix,
  freePort,
  loadCatalogue,
  startAppProcess,
  startPhotoServer,
  waitFor,
} from '@1688sync/testing';
import { launchChromium } from './browser.test-helper';

const ADMIN_KEY = 'web-admin-key-0123456789';
const READ_KEY = 'web-read-key-0123456789';
const HOSTILE_TITLE = '<img src=x onerror=alert(1)>';
const ARTIFACTS = path.resolve(__dirname, '../test-artifacts');

let db: TestDatabase;
let queues: TestQueuePrefix;
let photos: PhotoServer;
let storageDir: string;
let browser: Browser;
let base: string;
const apps: AppProcess[] = [];
const contexts: BrowserContext[] = [];
/** Every URL any page of the run asked for, and every dialog (alert) any page opened. */
const requested: string[] = [];
const dialogs: string[] = [];

const catalogue = () => loadCatalogue(photos.base);
const dressTitles = () =>
  catalogue()
    .products.filter((p) => String(p.title).includes('连衣裙') || Object.values((p.attributes as Record<string, string>) ?? {}).some((v) => v.includes('连衣裙')))
    .map((p) => String(p.title));

async function startApp(app: string, env: Record<string, string>): Promise<AppProcess> {
  const proc = await startAppProcess(app, env);
  apps.push(proc);
  await waitFor(
    `${app} to be ready`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`${app} exited:\n${proc.output().slice(-3000)}`);
      return fetch(`${proc.url}/readyz`).then((r) => r.ok, () => false);
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  );
  return proc;
}

async function put(pathname: string, body: unknown) {
  const res = await fetch(`${base}${pathname}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`PUT ${pathname} answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
}

async function stats() {
  const res = await fetch(`${base}/v1/stats`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return (await res.json()) as { images: { byDownloadStatus: Record<string, number>; byProcessStatus: Record<string, number> } };
}

/** A browser session signed in with `key` (asked once by the page, kept in sessionStorage). */
async function signedIn(key: string, viewport = { width: 1100, height: 800 }): Promise<Page> {
  const context = await browser.newContext({ viewport, locale: 'en-US' });
  contexts.push(context);
  context.on('request', (r) => requested.push(r.url()));
  const page = await context.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(`${base}/`);
  expect(new URL(page.url()).pathname).toBe('/ui');
  await page.getByLabel('API key').fill(key);
  await page.keyboard.press('Enter');
  await page.getByRole('navigation', { name: 'sections' }).waitFor();
  return page;
}

async function go(page: Page, hash: string) {
  await page.evaluate((h) => (location.hash = h), hash);
}

async function shoot(page: Page, name: string) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function expectAccessible(page: Page, what: string) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${what}: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

async function cardTitles(page: Page): Promise<string[]> {
  return page.locator('.card .card-title').allTextContents();
}

beforeAll(async () => {
  const setUpStarted = Date.now();
  await mkdir(ARTIFACTS, { recursive: true });
  [db, photos, storageDir] = await Promise.all([createTestDatabase('web'), startPhotoServer(), mkdtemp(path.join(os.tmpdir(), 'sync1688-web-'))]);
  queues = createTestQueuePrefix('web');
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    DATABASE_URL: db.url,
    QUEUE_PREFIX: queues.prefix,
    STORAGE_DIR: storageDir,
    PUBLIC_BASE_URL: `${base}/files`,
    IMAGE_DOWNLOAD_ALLOW_HOSTS: photos.host,
    WEBHOOK_ALLOW_HOSTS: '127.0.0.1:9',
    API_KEYS: `${ADMIN_KEY},${READ_KEY}:read`,
    LOG_LEVEL: 'warn',
    IMAGE_PROCESS_CONCURRENCY: '2',
    // Smaller compressed copies: the same pipeline, less CPU on a shared 2-core machine.
    IMAGE_COMPRESSED_WIDTH: '640',
  };
  // Migrated first, so the four apps and the browser can start side by side.
  const migrating = Database.create({ url: db.url, poolMax: 1, app: 'web-e2e' });
  await migrateUp(await migrating.ready(), db.url);
  await migrating.close();
  // The maintenance worker gives change events their feed positions (the change log) and runs the consistency check.
  [, , , , browser] = await Promise.all([
    startApp('ingest-api', { ...env, PORT: String(port) }),
    startApp('image-download-worker', env),
    startApp('image-processing-worker', env),
    startApp('maintenance-worker', env),
    launchChromium(),
  ]);

  const { suppliers, products } = catalogue();
  await put('/v1/suppliers', { source: 'web-e2e', suppliers });
  await put('/v1/products', {
    source: 'web-e2e',
    products: [
      ...products,
      // A picture the CDN no longer has: a 404 fails at once, for the pipeline page's retry.
      { externalId: 'web-broken', title: '坏图 测试商品', supplierExternalId: suppliers[0].externalId, images: [`${photos.base}/gone/no-such-photo.jpg`] },
      { externalId: 'web-hostile', title: HOSTILE_TITLE, supplierExternalId: suppliers[0].externalId, priceMin: 1, priceMax: 2 },
    ],
  });
  // A price change, so the first dress has a history of two points and a price_changed event.
  const dress = products.find((p) => String(p.title).includes('连衣裙'))!;
  await put('/v1/products', { source: 'web-e2e', products: [{ ...dress, priceMin: 45.5 }] });
  await fetch(`${base}/v1/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ url: 'http://127.0.0.1:9/hook', events: ['*'], description: 'price monitor' }),
  }).then((r) => expect(r.status).toBe(201));

  await waitFor(
    'every image downloaded and processed (or failed)',
    async () => {
      const { images } = await stats();
      const dl = images.byDownloadStatus;
      const pr = images.byProcessStatus;
      return dl.pending + dl.downloading === 0 && pr.processing === 0 && pr.pending <= dl.failed + dl.skipped && pr.processed > 0;
    },
    { timeoutMs: 150_000, intervalMs: 250 },
  );
  const check = await fetch(`${base}/v1/maintenance/consistency-check`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` }, body: '{}' });
  expect(check.status).toBe(202);
  await waitFor(
    'the consistency report',
    async () => {
      const res = await fetch(`${base}/v1/maintenance/reports`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      const { items } = (await res.json()) as { items: { status: string }[] };
      return items.some((r) => r.status !== 'running');
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  console.log(`set-up (apps, catalogue ingested and processed, a consistency check): ${((Date.now() - setUpStarted) / 1000).toFixed(1)} s`);
}, 240_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await Promise.all(apps.map((a) => a.stop('SIGTERM')));
  await photos?.close();
  await queues?.cleanup();
  await db?.drop();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

describe('the catalogue page in Chromium', () => {
  let admin: Page;

  it('asks for the key once, searches 连衣裙 from the keyboard, finds the dresses and nothing else, and keeps the search in the URL', async () => {
    admin = await signedIn(ADMIN_KEY);
    await expectAccessible(admin, 'products');
    await shoot(admin, 'products');

    await admin.getByLabel('Search titles and attributes').focus();
    await admin.keyboard.type('连衣裙');
    await admin.keyboard.press('Enter');
    await admin.waitForFunction(() => location.hash.includes('q='));
    expect(decodeURIComponent(new URL(admin.url()).hash)).toBe('#/products?q=连衣裙');
    const expected = dressTitles().sort();
    expect(expected.length).toBeGreaterThan(2);
    await waitFor('the search results', async () => (await cardTitles(admin)).length === expected.length && !(await admin.getByText('Loading products').count()));
    expect((await cardTitles(admin)).sort()).toEqual(expected);

    // The address is the search: a reload (or the same link in another tab) shows the same results.
    await admin.reload();
    await waitFor('the results after a reload', async () => (await cardTitles(admin)).length === expected.length);
    expect((await cardTitles(admin)).sort()).toEqual(expected);
    await waitFor('the grid thumbnails to load', () => admin.evaluate(() => [...document.querySelectorAll<HTMLImageElement>('.grid img.thumb-image')].every((i) => i.complete && i.naturalWidth > 0)));
    await shoot(admin, 'products-search');
  });

  it('opens a product and its images load, with every variant, tiers, SKUs, the price history and the change log', async () => {
    const title = catalogue().products.find((p) => String(p.title).includes('连衣裙'))!.title as string;
    await admin.locator('.card-title').filter({ hasText: new RegExp(`^${title}$`) }).click();
    await admin.getByRole('heading', { level: 1, name: title }).waitFor();
    await waitFor('every image of the product to load', () =>
      admin.evaluate(() => {
        const imgs = [...document.querySelectorAll<HTMLImageElement>('.images img.thumb-image')];
        return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
      }),
    );
    const images = admin.locator('.images > li');
    expect(await images.count()).toBe(3);
    for (const variant of ['original', 'compressed', 'thumbnail']) expect(await admin.getByRole('link', { name: variant, exact: true }).count()).toBeGreaterThan(0);
    await admin.getByText('6000002073550').waitFor(); // a SKU
    await admin.getByRole('img', { name: /Price history: 2 observation/ }).waitFor();
    await admin.getByText('product.price_changed').waitFor();
    await expectAccessible(admin, 'product');
    await shoot(admin, 'product');
  });

  it('retries a failed image from the pipeline page with an admin key, and shows it queued', async () => {
    await go(admin, '#/pipeline');
    const failed = admin.locator('.failed-image', { hasText: 'no-such-photo.jpg' });
    await failed.waitFor();
    await expect(failed.locator('.error').textContent()).resolves.toMatch(/404/);
    await admin.getByRole('link', { name: 'Bull Board' }).waitFor();
    await admin.getByRole('region', { name: 'queue depths' }).getByRole('row', { name: /image-download/ }).waitFor();
    await admin.getByRole('region', { name: 'recent sync records' }).getByText('web-e2e').first().waitFor();
    await admin.locator('.reports').getByText(/critical/).first().waitFor();
    await expectAccessible(admin, 'pipeline');
    await shoot(admin, 'pipeline');
    const retried = admin.waitForResponse((r) => /\/v1\/images\/[0-9a-f-]+\/retry$/.test(r.url()) && r.request().method() === 'POST');
    await failed.getByRole('button', { name: /Retry/ }).click();
    expect((await retried).status()).toBe(200);
    await failed.getByRole('status').filter({ hasText: 'queued for another try' }).waitFor();
  });

  it('lists suppliers and a supplier with its products, and the webhooks with their deliveries', async () => {
    await go(admin, '#/suppliers');
    const first = catalogue().suppliers[0];
    await admin.getByRole('link', { name: String(first.name), exact: true }).waitFor();
    await expectAccessible(admin, 'suppliers');
    await shoot(admin, 'suppliers');
    await admin.getByRole('link', { name: String(first.name), exact: true }).click();
    await admin.getByRole('heading', { level: 1, name: String(first.name) }).waitFor();
    await waitFor('the supplier products', async () => (await cardTitles(admin)).length > 0);
    await expectAccessible(admin, 'supplier');
    await shoot(admin, 'supplier');

    await go(admin, '#/webhooks');
    await admin.getByRole('button', { name: 'http://127.0.0.1:9/hook' }).click();
    await admin.getByText('price monitor').waitFor();
    // The maintenance worker tried to deliver the catalogue's events to a port where nothing listens.
    await admin.getByRole('region', { name: 'deliveries to http://127.0.0.1:9/hook' }).getByRole('row').nth(1).waitFor();
    await expectAccessible(admin, 'webhooks');
    await shoot(admin, 'webhooks');
  });

  it('offers a read key no retry, no delete and no webhooks', async () => {
    const reader = await signedIn(READ_KEY);
    await go(reader, '#/pipeline');
    await reader.locator('.failed-image').first().waitFor();
    expect(await reader.getByRole('button', { name: /Retry/ }).count()).toBe(0);
    expect(await reader.getByRole('link', { name: 'Webhooks' }).count()).toBe(0);
    await go(reader, '#/products?q=连衣裙');
    await reader.locator('.card-title').first().click();
    await reader.getByRole('heading', { level: 2, name: /Images/ }).waitFor();
    expect(await reader.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    expect(await reader.evaluate(() => document.querySelector('.who')?.textContent)).toContain('read key');

    // A key the API no longer takes: the next 401 asks for one again.
    await reader.evaluate(() => sessionStorage.setItem('1688sync.apiKey', 'revoked-key-0123456789'));
    await go(reader, '#/suppliers');
    await reader.getByLabel('API key').waitFor();
    await expectAccessible(reader, 'key prompt');
  });

  it('renders a hostile title as text: no element is made from it and no script runs; an admin deletes and restores it', async () => {
    await go(admin, '#/products?q=onerror');
    const card = admin.locator('.card-title').filter({ hasText: HOSTILE_TITLE });
    await card.waitFor();
    expect(await card.textContent()).toBe(HOSTILE_TITLE);
    await card.click();
    await admin.getByRole('heading', { level: 1, name: HOSTILE_TITLE }).waitFor();
    expect(await admin.evaluate(() => document.querySelectorAll('img[src="x"]').length)).toBe(0);
    expect(dialogs).toEqual([]);
    await shoot(admin, 'hostile-title');

    // An admin key may soft-delete it, and restore it.
    await admin.getByRole('button', { name: 'Delete', exact: true }).click();
    await admin.getByRole('button', { name: 'Delete it and its images' }).click();
    await admin.getByRole('status').filter({ hasText: 'Deleted.' }).waitFor();
    await admin.getByRole('button', { name: 'Restore' }).click();
    await admin.getByRole('status').filter({ hasText: 'Restored.' }).waitFor();
    await admin.getByRole('button', { name: 'Delete', exact: true }).waitFor();
  });

  it('works at 375 px wide: nothing wider than the screen', async () => {
    const phone = await signedIn(ADMIN_KEY, { width: 375, height: 740 });
    for (const hash of ['#/products?q=连衣裙', '#/pipeline', '#/suppliers']) {
      await go(phone, hash);
      await phone.locator('main h1').waitFor();
      await phone.locator('.card, .failed-image, table').first().waitFor();
      expect(await phone.evaluate(() => document.documentElement.scrollWidth), hash).toBeLessThanOrEqual(375);
    }
    await shoot(phone, 'products-375px');
  });

  it("asked nothing of any host but the API's own (which is PUBLIC_BASE_URL's here)", () => {
    expect(requested.length).toBeGreaterThan(10);
    const elsewhere = requested.filter((u) => !u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== base);
    expect(elsewhere).toEqual([]);
  });
});
