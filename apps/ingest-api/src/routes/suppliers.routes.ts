// Reading, soft-deleting and restoring suppliers. A supplier's delete takes its products and images
// with it; its restore brings back exactly what that delete took.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RouteTable } from '../http/route-spec';
import { page, presentSupplier, supplierSchema } from '@1688sync/ingest';
import { type ApiContext, externalIdParam, includeDeleted, limit, notFound, uuidParam } from './context';

export function registerSupplierRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  routes.add(app, {
    method: 'GET',
    url: '/v1/suppliers',
    operationId: 'listSuppliers',
    summary: 'List suppliers, most recently updated first, in keyset pages',
    tag: 'suppliers',
    role: 'read',
    query: z.object({ limit, cursor: z.string().max(2000).optional(), includeDeleted }),
    responses: { 200: { description: 'a page of suppliers', schema: page(supplierSchema) } },
    async handler({ query }) {
      const result = await (await ctx.readRepos()).suppliers.list(query);
      return { items: result.items.map(presentSupplier), nextCursor: result.nextCursor };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/suppliers/by-external/:externalId',
    operationId: 'getSupplierByExternalId',
    summary: 'One supplier by its 1688 memberId',
    tag: 'suppliers',
    role: 'read',
    params: externalIdParam,
    responses: { 200: { description: 'the supplier', schema: supplierSchema }, 404: { description: 'no such supplier' } },
    async handler({ params }) {
      const s = await (await ctx.repos()).suppliers.findByExternalId(params.externalId);
      return s ? presentSupplier(s) : notFound('supplier', params.externalId);
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/suppliers/:id',
    operationId: 'getSupplier',
    summary: 'One supplier',
    tag: 'suppliers',
    role: 'read',
    params: uuidParam,
    responses: { 200: { description: 'the supplier', schema: supplierSchema }, 404: { description: 'no such supplier' } },
    async handler({ params }) {
      const s = await (await ctx.repos()).suppliers.findById(params.id);
      return s ? presentSupplier(s) : notFound('supplier', params.id);
    },
  });
  routes.add(app, {
    method: 'DELETE',
    url: '/v1/suppliers/:id',
    operationId: 'deleteSupplier',
    summary: 'Soft-delete a supplier with its products and their images',
    tag: 'suppliers',
    role: 'admin',
    params: uuidParam,
    responses: { 200: { description: 'deleted (false: it already was)', schema: z.object({ id: z.string(), deleted: z.boolean() }) } },
    async handler({ params }) {
      const deleted = await ctx.inTransaction((repos) => repos.suppliers.softDelete(params.id));
      return { id: params.id, deleted };
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/suppliers/:id/restore',
    operationId: 'restoreSupplier',
    summary: 'Restore a soft-deleted supplier with the products and images its deletion took',
    tag: 'suppliers',
    role: 'admin',
    params: uuidParam,
    responses: { 200: { description: 'restored (false: it was not deleted)', schema: z.object({ id: z.string(), restored: z.boolean() }) } },
    async handler({ params }) {
      const restored = await ctx.inTransaction((repos) => repos.suppliers.restore(params.id));
      return { id: params.id, restored };
    },
  });
}
