// Routes declared once, with zod schemas for params, query, body and responses: the same
// declaration validates requests (a 400 that names each bad field) and writes the OpenAPI
// document served at /openapi.json: one source for both, so the two cannot drift apart.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HttpError } from './errors';

export type Role = 'read' | 'ingest' | 'admin';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteDefinition<P = unknown, Q = unknown, B = unknown> {
  method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  operationId: string;
  summary: string;
  tag: string;
  /** The least role that may call it; null for public routes. */
  role: Role | null;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** What the body looks like for readers when `body` validates only the envelope. */
  docBody?: z.ZodType;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  handler(input: RouteInput<P, Q, B>): Promise<unknown>;
}

/** Turns zod issues into the error format's details, [{ field, message }] (docs/http-api.md, Errors). */
export function fieldDetails(where: string, error: z.ZodError) {
  return error.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    message: i.message,
  }));
}

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: 'params' | 'query' | 'body'): T {
  if (!schema) return value as T;
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const details = fieldDetails(where, result.error);
  const tooMany = result.error.issues.find((i) => i.code === 'too_big' && i.path.length === 1 && (i.path[0] === 'products' || i.path[0] === 'suppliers'));
  if (tooMany) throw new HttpError(400, 'too_many_items', `${String(tooMany.path[0])}: ${tooMany.message}`, details);
  throw new HttpError(400, 'validation_failed', `invalid request: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`, details);
}

export class RouteTable {
  readonly definitions: RouteDefinition[] = [];

  add<P, Q, B>(app: FastifyInstance, def: RouteDefinition<P, Q, B>): void {
    this.definitions.push(def as RouteDefinition);
    app.route({
      method: def.method,
      url: def.url,
      config: { role: def.role },
      handler: async (request, reply) => {
        const input = {
          params: parse(def.params, request.params, 'params'),
          query: parse(def.query, request.query, 'query'),
          body: parse(def.body, request.body, 'body'),
          request,
          reply,
        };
        return def.handler(input);
      },
    });
  }
}

// ---- OpenAPI ----

type JsonSchema = Record<string, unknown>;

/** zod → OpenAPI 3.0 schema; named schemas (meta id) go to components, referenced. */
function toOpenApi(schema: z.ZodType, components: Record<string, JsonSchema>, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as JsonSchema;
  const defs = { ...((json.definitions as Record<string, JsonSchema>) ?? {}), ...((json.$defs as Record<string, JsonSchema>) ?? {}) };
  delete json.definitions;
  delete json.$defs;
  delete json.$schema;
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) {
        out[k] = k === '$ref' && typeof v === 'string' ? v.replace(/^#\/(definitions|\$defs)\//, '#/components/schemas/') : rewrite(v);
      }
      return out;
    }
    return node;
  };
  for (const [name, def] of Object.entries(defs)) components[name] = rewrite(def) as JsonSchema;
  return rewrite(json) as JsonSchema;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query', components: Record<string, JsonSchema>) {
  if (!schema) return [];
  const json = toOpenApi(schema, components, 'input');
  const props = (json.properties as Record<string, JsonSchema>) ?? {};
  const required = new Set((json.required as string[]) ?? []);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: where, required: where === 'path' || required.has(name), schema: rest, ...(description ? { description } : {}) };
  });
}

export function buildOpenApiDocument(definitions: RouteDefinition[], info: { title: string; version: string; description: string }, errorSchema: z.ZodType) {
  const components: Record<string, JsonSchema> = {};
  const error = toOpenApi(errorSchema, components, 'output');
  components.Error = error;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of definitions) {
    const path = def.url.replace(/:(\w+)/g, '{$1}');
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(def.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.schema ? { content: { 'application/json': { schema: toOpenApi(r.schema, components, 'output') } } } : {}),
      };
    }
    const body = def.docBody ?? def.body;
    const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
    for (const status of ['400', ...(def.role ? ['401', '403'] : []), ...(body ? ['413'] : []), '500']) {
      responses[status] ??= { description: 'error', content: errorContent };
    }
    // Any route may be shed under overload (docs/http-api.md, Overload), and then says when to come back.
    const declared503 = (responses['503'] as { description?: string } | undefined)?.description;
    responses['503'] = {
      description: declared503 ? `${declared503}; or the API is overloaded` : 'the API is overloaded, or PostgreSQL or Redis is unavailable',
      headers: { 'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer' } } },
      content: errorContent,
    };
    (paths[path] ??= {})[def.method.toLowerCase()] = {
      operationId: def.operationId,
      summary: def.summary,
      tags: [def.tag],
      ...(def.role ? { security: [{ bearer: [] }], 'x-role': def.role } : { security: [] }),
      parameters: [...parameters(def.params, 'path', components), ...parameters(def.query, 'query', components)],
      ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: toOpenApi(body, components, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.0.3',
    info,
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API_KEYS: token or token:role (read, ingest, admin)' } },
    },
  };
}
