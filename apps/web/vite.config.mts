// Builds the catalogue page into dist/, served by the ingest API at /ui (apps/ingest-api/src/http/web-ui.routes.ts).
// No inline script or style (the page runs under `script-src 'self'`), no external host.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/ui/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: 'es2022',
  },
});
