// Paths of the fixtures shipped in this repository (photos, a truncated JPEG, the sample catalogue).
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const FIXTURES_DIR = path.resolve(__dirname, '../fixtures');
export const PHOTOS_DIR = path.join(FIXTURES_DIR, 'photos');

export const fixturePhoto = (name: string) => path.join(PHOTOS_DIR, name);

/** The sample catalogue with `{{BASE}}` replaced by the URL of the server serving FIXTURES_DIR. */
export function loadCatalogue(baseUrl: string): { suppliers: Record<string, unknown>[]; products: Record<string, unknown>[] } {
  return JSON.parse(readFileSync(path.join(FIXTURES_DIR, 'catalogue.json'), 'utf8').replaceAll('{{BASE}}', baseUrl.replace(/\/+$/, '')));
}
