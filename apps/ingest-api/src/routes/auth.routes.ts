// GET /v1/auth/whoami (docs/http-api.md, Authentication and roles): the role of the caller's key, so a client
// (the catalogue page) offers only what that role may do, and knows whether it must ask for a key at all.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { API_ROLES } from '@1688sync/config';
import type { Authenticator } from '../http/auth';
import type { RouteTable } from '../http/route-spec';

const whoamiSchema = z
  .object({
    role: z.enum(API_ROLES).describe('what this key may do: read (GET only), ingest (GET and the ingest PUTs) or admin (everything)'),
    authRequired: z.boolean().describe('false when the API has no API_KEYS (development): every caller is admin'),
  })
  .meta({ id: 'WhoAmI' });

export function registerAuthRoutes(app: FastifyInstance, routes: RouteTable, auth: Authenticator) {
  routes.add(app, {
    method: 'GET',
    url: '/v1/auth/whoami',
    operationId: 'whoami',
    summary: "The role of the caller's API key, and whether the API requires one",
    tag: 'auth',
    role: 'read',
    responses: { 200: { description: 'the role of the key', schema: whoamiSchema }, 401: { description: 'no key, or a key that is not valid' } },
    handler: async ({ request }) => ({ role: auth.roleOf(request), authRequired: !auth.open }),
  });
}
