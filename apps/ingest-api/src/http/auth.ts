// Bearer-key auth for /v1 (docs/http-api.md, Authentication and roles): keys compared in constant time, roles read < ingest <
// admin (a read key may only GET; an ingest key may also PUT batches; admin may do everything).
// Without API_KEYS the API is open — allowed outside production only (the config refuses it there).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiKey, ApiRole } from '@1688sync/config';
import { HttpError } from './errors';
import type { Role } from './route-spec';

const RANK: Record<ApiRole, number> = { read: 1, ingest: 2, admin: 3 };

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export interface Authenticator {
  /** The role of a request's bearer key; throws 401 without a valid one. */
  roleOf(request: FastifyRequest): ApiRole;
  readonly open: boolean;
}

export function createAuthenticator(keys: ApiKey[]): Authenticator {
  const known = keys.map((k) => ({ digest: digest(k.token), role: k.role }));
  return {
    open: known.length === 0,
    roleOf(request) {
      if (!known.length) return 'admin';
      const header = request.headers.authorization ?? '';
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match) throw new HttpError(401, 'unauthorized', 'send Authorization: Bearer <api key>');
      const presented = digest(match[1]);
      // Compare against every key, without stopping early, so timing says nothing.
      let role: ApiRole | null = null;
      for (const key of known) {
        if (timingSafeEqual(key.digest, presented) && role === null) role = key.role;
      }
      if (!role) throw new HttpError(401, 'unauthorized', 'the API key is not valid');
      return role;
    },
  };
}

/** Checks every route that declares a role (config.role); public routes declare none. */
export function registerAuth(app: FastifyInstance, auth: Authenticator) {
  app.addHook('onRequest', async (request, reply) => {
    const required = (request.routeOptions.config as { role?: Role | null } | undefined)?.role;
    if (!required) return;
    let role: ApiRole;
    try {
      role = auth.roleOf(request);
    } catch (err) {
      reply.header('www-authenticate', 'Bearer realm="1688sync"');
      throw err;
    }
    if (RANK[role] < RANK[required]) {
      throw new HttpError(403, 'forbidden', `a ${role} key may not ${request.method} ${request.routeOptions.url}; it needs the ${required} role`);
    }
  });
}
