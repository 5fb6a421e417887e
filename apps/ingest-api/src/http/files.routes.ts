// GET/HEAD /files/<key> (docs/http-api.md, Files): stored images served straight from the fs driver, for set-ups
// without a CDN. Public — browsers and CDNs fetch PUBLIC_BASE_URL links without a bearer key.
// The path is hostile input: it is decoded once (by the router) and must pass the storage
// library's assertSafeKey; the driver then builds the file path, never this route.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '@1688sync/config';
import {
  IMMUTABLE_CACHE_CONTROL,
  InvalidStorageKeyError,
  type StorageDriver,
  StorageObjectNotFoundError,
  type StoredObject,
  assertSafeKey,
  contentTypeOfKey,
  isDerivedImageKey,
} from '@1688sync/storage';
import { HttpError } from './errors';

const ORIGINAL_CACHE_CONTROL = 'public, max-age=86400';

export interface FileRoutesDependencies {
  /** The fs driver; null with another driver (files then come from PUBLIC_BASE_URL). */
  storage: StorageDriver | null;
  config: Config;
}

export function registerFileRoutes(app: FastifyInstance, { storage, config }: FileRoutesDependencies) {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/files/*',
    handler: async (request, reply) => {
      if (config.storage.driver !== 'fs' || !storage) {
        throw new HttpError(
          404,
          'not_found',
          `files are not served by the API when STORAGE_DRIVER=${config.storage.driver}; fetch them from PUBLIC_BASE_URL (${config.storage.publicBaseUrl})`,
        );
      }
      const key = storageKeyOf(request);
      // Only the image layout is public: whatever else lands under STORAGE_DIR (a misplaced
      // BACKUP_DIR, an operator's scratch files) is never served.
      if (!key.startsWith(IMAGE_KEY_ROOT)) throw new HttpError(404, 'not_found', `no stored file ${key}: only image keys (${IMAGE_KEY_ROOT}…) are served`);
      const stored = await statOrThrow(storage, key);
      const etag = `W/"${stored.size.toString(16)}-${stored.modifiedAt.getTime().toString(16)}"`;
      reply.headers({
        'content-type': contentTypeOfKey(key),
        // Thumbnails and compressed copies are cached for good (the s3 driver gives them the same header).
        'cache-control': isDerivedImageKey(key) ? IMMUTABLE_CACHE_CONTROL : ORIGINAL_CACHE_CONTROL,
        'x-content-type-options': 'nosniff',
        etag,
        'last-modified': stored.modifiedAt.toUTCString(),
      });
      if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();
      reply.header('content-length', stored.size);
      if (request.method === 'HEAD') return reply.send();
      return reply.send(await getOrThrow(storage, key));
    },
  });
}

/**
 * The key named by the path. find-my-way has decoded the wildcard exactly once, so `%2e%2e`
 * arrives as `..` (refused here) and `%252e%252e` as the harmless literal `%2e%2e`; it is never
 * decoded again. Anything assertSafeKey refuses is a 400 — like a malformed percent-escape, which
 * Fastify itself answers with 400 — while a well-formed key with no file is a 404.
 */
const IMAGE_KEY_ROOT = 'products/';

function storageKeyOf(request: FastifyRequest): string {
  const key = (request.params as { '*'?: string })['*'] ?? '';
  try {
    return assertSafeKey(key);
  } catch (err) {
    if (err instanceof InvalidStorageKeyError) throw invalidPath(err);
    throw err;
  }
}

async function statOrThrow(storage: StorageDriver, key: string): Promise<StoredObject> {
  let stored: StoredObject | null;
  try {
    stored = await storage.stat(key);
  } catch (err) {
    if (err instanceof InvalidStorageKeyError) throw invalidPath(err);
    throw err;
  }
  if (!stored) throw notFound(key);
  return stored;
}

async function getOrThrow(storage: StorageDriver, key: string) {
  try {
    return await storage.get(key);
  } catch (err) {
    // Deleted between stat and get (a purge running): as absent as if it had never been.
    if (err instanceof StorageObjectNotFoundError) throw notFound(key);
    throw err;
  }
}

function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const weak = (tag: string) => tag.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || weak(tag) === weak(etag));
}

function invalidPath(err: InvalidStorageKeyError): HttpError {
  return new HttpError(400, 'validation_failed', `the path does not name a stored file: ${err.message}`, [{ field: 'path', message: err.message }]);
}

function notFound(key: string): HttpError {
  return new HttpError(404, 'not_found', `no stored file ${key}`);
}
