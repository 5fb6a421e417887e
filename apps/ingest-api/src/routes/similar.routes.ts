// 同款 (SPEC §12): near-duplicate products of a product or an image, the stored groups, and the
// operator's requests for the grouping and the fingerprint backfill. Reads go through
// SimilarityRepository and ProductGroupRepository (replica-ready); the jobs through requestMaintenance.
import type { GroupProduct, SimilarProduct } from '@1688sync/db';
import { MAX_GROUP_PAGE, MAX_SIMILAR_DISTANCE, MAX_SIMILAR_LIMIT } from '@1688sync/db';
import { requestMaintenance } from '@1688sync/maintenance';
import { JobName } from '@1688sync/queues';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RouteTable } from '../http/route-spec';
import { type ApiContext, notFound, uuidParam } from './context';

const similarProductSchema = z
  .object({
    id: z.string(),
    externalId: z.string(),
    title: z.string(),
    priceMin: z.number().nullable(),
    priceMax: z.number().nullable(),
    supplier: z.object({ id: z.string(), name: z.string().nullable() }).nullable(),
    thumbnailUrl: z.string().nullable().meta({ description: "the product's main thumbnail" }),
  })
  .meta({ id: 'SimilarProductSummary' });

const similarItemsSchema = z
  .object({
    items: z.array(
      z.object({
        product: similarProductSchema,
        distance: z.number().meta({ description: 'Hamming distance of the two perceptual hashes (0..64)' }),
        imageId: z.string().meta({ description: "this product's image (or the asked image)" }),
        matchedImageId: z.string().meta({ description: "the other product's image" }),
      }),
    ),
  })
  .meta({ id: 'SimilarProducts' });

const groupSchema = z.object({ groupId: z.string(), size: z.number(), products: z.array(similarProductSchema) }).meta({ id: 'ProductGroup' });

const similarQuery = z.object({
  maxDistance: z.coerce.number().int('must be a whole number').min(0).max(MAX_SIMILAR_DISTANCE).optional(),
  limit: z.coerce.number().int('must be a whole number').min(1).max(MAX_SIMILAR_LIMIT).optional(),
});

const jobAcceptedSchema = z.object({ jobId: z.string() });

export function registerSimilarRoutes(app: FastifyInstance, routes: RouteTable, ctx: ApiContext) {
  const thumbnailUrl = (key: string | null) => (key ? ctx.fileUrl(key) : null);
  const presentProduct = (p: GroupProduct) => ({
    id: p.id,
    externalId: p.externalId,
    title: p.title,
    priceMin: p.priceMin,
    priceMax: p.priceMax,
    supplier: p.supplier,
    thumbnailUrl: thumbnailUrl(p.thumbnailKey),
  });
  const presentSimilar = (items: SimilarProduct[]) => ({
    items: items.map((s) => ({
      product: presentProduct({ ...s, id: s.productId }),
      distance: s.distance,
      imageId: s.imageId,
      matchedImageId: s.matchedImageId,
    })),
  });

  routes.add(app, {
    method: 'GET',
    url: '/v1/products/:id/similar',
    operationId: 'similarProducts',
    summary:
      "Other live products with a main or gallery image within maxDistance (default SIMILAR_MAX_DISTANCE) of one of this product's main or gallery images: one item per product at its smallest distance, nearest first, then cheapest",
    tag: 'similar',
    role: 'read',
    params: uuidParam,
    query: similarQuery,
    responses: { 200: { description: 'near-duplicate products', schema: similarItemsSchema }, 404: { description: 'no such product' } },
    async handler({ params, query }) {
      const repos = await ctx.readRepos();
      if (!(await repos.products.findById(params.id))) notFound('product', params.id);
      return presentSimilar(await repos.similarity.similarToProduct(params.id, { maxDistance: query.maxDistance ?? ctx.config.similar.maxDistance, limit: query.limit }));
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/images/:id/similar',
    operationId: 'similarToImage',
    summary: 'The same as /v1/products/:id/similar for one image (none for an image of kind detail or sku)',
    tag: 'similar',
    role: 'read',
    params: uuidParam,
    query: similarQuery,
    responses: { 200: { description: 'near-duplicate products', schema: similarItemsSchema }, 404: { description: 'no such image' } },
    async handler({ params, query }) {
      const repos = await ctx.readRepos();
      if (!(await repos.images.existsLive(params.id))) notFound('image', params.id);
      return presentSimilar(await repos.similarity.similarToImage(params.id, { maxDistance: query.maxDistance ?? ctx.config.similar.maxDistance, limit: query.limit }));
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/products/:id/group',
    operationId: 'productGroup',
    summary: "The product's 同款 group, cheapest first (404 when it is in none)",
    tag: 'similar',
    role: 'read',
    params: uuidParam,
    responses: { 200: { description: 'the group', schema: groupSchema }, 404: { description: 'no such product, or it is in no group' } },
    async handler({ params }) {
      const group = await (await ctx.repos()).productGroups.groupOfProduct(params.id);
      if (!group) notFound('group of product', params.id);
      return { groupId: group.groupId, size: group.size, products: group.products.map(presentProduct) };
    },
  });
  routes.add(app, {
    method: 'GET',
    url: '/v1/product-groups',
    operationId: 'listProductGroups',
    summary: '同款 groups of at least minSize products (default 2), largest first, each cheapest first',
    tag: 'similar',
    role: 'read',
    query: z.object({
      minSize: z.coerce.number().int('must be a whole number').min(1).max(1_000_000).optional(),
      limit: z.coerce.number().int('must be a whole number').min(1).max(MAX_GROUP_PAGE).optional(),
      cursor: z.string().max(2000).optional(),
    }),
    responses: { 200: { description: 'a page of groups', schema: z.object({ items: z.array(groupSchema), nextCursor: z.string().nullable() }) } },
    async handler({ query }) {
      const page = await (await ctx.readRepos()).productGroups.listGroups(query);
      return { items: page.items.map((g) => ({ groupId: g.groupId, size: g.size, products: g.products.map(presentProduct) })), nextCursor: page.nextCursor };
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/maintenance/group-similar',
    operationId: 'runGroupSimilar',
    summary: 'Queue group-similar: products whose main images are near duplicates are clustered into the stored groups',
    tag: 'maintenance',
    role: 'admin',
    body: z
      .object({ maxDistance: z.number().int().min(0).max(MAX_SIMILAR_DISTANCE).optional().meta({ description: 'default SIMILAR_MAX_DISTANCE' }) })
      .strict()
      .default({}),
    responses: { 202: { description: 'group-similar is queued', schema: jobAcceptedSchema }, 503: { description: 'Redis is unavailable' } },
    async handler({ body, reply }) {
      const accepted = await requestMaintenance(ctx.producers, JobName.GroupSimilar, body, { requestedBy: 'api' });
      reply.code(202);
      return accepted;
    },
  });
  routes.add(app, {
    method: 'POST',
    url: '/v1/images/fingerprint',
    operationId: 'backfillFingerprints',
    summary: 'Queue fingerprint-backfill: processed images without phash/thumbhash/dominantColor get them from their stored originals (nothing is downloaded)',
    tag: 'maintenance',
    role: 'admin',
    body: z
      .object({ productId: z.uuid('must be a UUID').optional() })
      .strict()
      .default({}),
    responses: { 202: { description: 'fingerprint-backfill is queued', schema: jobAcceptedSchema }, 503: { description: 'Redis is unavailable' } },
    async handler({ body, reply }) {
      const accepted = await requestMaintenance(ctx.producers, JobName.FingerprintBackfill, body, { requestedBy: 'api' });
      reply.code(202);
      return accepted;
    },
  });
}
