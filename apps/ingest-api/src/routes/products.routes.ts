// Reading, soft-deleting and restoring products (docs/http-api.md, Products and suppliers).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PRODUCT_SORTS, SYNC_STATUSES } from '@1688sync/db';
import type { RouteTable } from '../http/route-spec';
import { page, presentProduct, presentProductListItem, productListEntrySchema, productSchema } from '@1688sync/ingest';
import { type ApiContext, booleanFilter, externalIdParam, includeDeleted, limit, notFound, textFilter, uuidParam } from './context';

const productQuery = z.object({
  q: z.string().max(200).optional(),
  supplierId: z.uuid('must be a UUID').optional(),
  categoryId: z.string().max(128).optional(),
  priceMin: z.coerce.number().min(0).optional(),
  priceMax: z.coerce.number().min(0).optional(),
  syncStatus: z.enum(SYNC_STATUSES).optional(),
  updatedSince: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time' }).optional(),
  // SPEC §16.
  shipFrom: textFilter(128).meta({ description: 'ship-from province or city equals this (shipping.fromProvince / fromCity), e.g. 浙江 or 义乌' }),
  dropship: booleanFilter.meta({ description: 'true: only products with a product-level dropshipPrice (一件代发); false: only those without' }),
  maxWeightKg: z.coerce.number().min(0).optional().meta({ description: 'shipping.weightKg at most this; products without a weight are left out' }),
  supplierIdentity: textFilter(64).meta({ description: "the supplier's identities contain this code, e.g. super_factory" }),
  offerStatus: textFilter(64).meta({ description: "1688's offer lifecycle word as sent, e.g. published, expired" }),
  inStock: booleanFilter.meta({ description: 'true: total SKU stock above 0; false: 0 or unknown' }),
  sort: z.enum(PRODUCT_SORTS).optional(),
  limit,
  cursor: z.string().max(2000).optional(),
  includeDeleted,
});

const restoredSchema = z.object({ id: z.string(), restored: z.boolean() });
const deletedSchema = z.object({ id: z.string(), deleted: z.boolean() });

export function registerProductRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  async function productBody(id: string | null, externalId: string | null) {
    const repos = await ctx.repos();
    const product = id ? await repos.products.findById(id) : await repos.products.findByExternalId(externalId!);
    if (!product) notFound('product', id ?? externalId!);
    const images = await repos.images.findByProduct(product.id);
    return presentProduct(product, images, ctx.fileUrl);
  }

  routes.add(app, {
    method: 'GET',
    url: '/v1/products',
    operationId: 'listProducts',
    summary: 'Search and list products: q (substring, Chinese included), filters, sorts, keyset pages',
    tag: 'products',
    role: 'read',
    query: productQuery,
    responses: { 200: { description: 'a page of products', schema: page(productListEntrySchema) } },
    async handler({ query }) {
      const repos = await ctx.readRepos();
      const result = await repos.search.search({
        ...query,
        updatedSince: query.updatedSince ? new Date(query.updatedSince) : undefined,
      });
      // The grid's placeholders (SPEC §12): each item's main thumbnail and ThumbHash, one statement a page.
      const thumbs = await repos.images.mainThumbnails(result.items.map((p) => p.id));
      return {
        items: result.items.map((p) => {
          const main = thumbs.get(p.id);
          return { ...presentProductListItem(p), thumbnailUrl: main?.keyThumbnail ? ctx.fileUrl(main.keyThumbnail) : null, thumbhash: main?.thumbhash ?? null };
        }),
        nextCursor: result.nextCursor,
      };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/products/by-external/:externalId',
    operationId: 'getProductByExternalId',
    summary: 'One product by its 1688 offerId, with supplier summary and images',
    tag: 'products',
    role: 'read',
    params: externalIdParam,
    responses: { 200: { description: 'the product', schema: productSchema }, 404: { description: 'no such product' } },
    handler: async ({ params }) => productBody(null, params.externalId),
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/products/:id',
    operationId: 'getProduct',
    summary: 'One product with supplier summary and images',
    tag: 'products',
    role: 'read',
    params: uuidParam,
    responses: { 200: { description: 'the product', schema: productSchema }, 404: { description: 'no such product' } },
    handler: async ({ params }) => productBody(params.id, null),
  });
  routes.add(app, {
    method: 'DELETE',
    url: '/v1/products/:id',
    operationId: 'deleteProduct',
    summary: 'Soft-delete a product and its images',
    tag: 'products',
    role: 'admin',
    params: uuidParam,
    responses: { 200: { description: 'deleted (false: it already was)', schema: deletedSchema }, 404: { description: 'no such product' } },
    async handler({ params }) {
      const deleted = await ctx.inTransaction((repos) => repos.products.softDelete(params.id));
      return { id: params.id, deleted };
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/products/:id/restore',
    operationId: 'restoreProduct',
    summary: 'Restore a soft-deleted product with the images its deletion took',
    tag: 'products',
    role: 'admin',
    params: uuidParam,
    responses: {
      200: { description: 'restored (false: it was not deleted)', schema: restoredSchema },
      404: { description: 'no such product' },
      409: { description: 'its supplier is deleted' },
    },
    async handler({ params }) {
      const restored = await ctx.inTransaction((repos) => repos.products.restore(params.id));
      return { id: params.id, restored };
    },
  });
}
