import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidPayloadError, parsePayload, payloadSchemas } from './payloads';
import { JobName } from './queue-names';

/** The message parsePayload throws for `data`, failing the test when it throws none. */
function problemWith(name: JobName, data: unknown): string {
  try {
    parsePayload(name, data);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPayloadError);
    expect((err as InvalidPayloadError).code).toBe('invalid_payload');
    return (err as Error).message;
  }
  throw new Error(`expected ${name} to reject ${JSON.stringify(data)?.slice(0, 100)}`);
}

const products = (n: number) => Array.from({ length: n }, (_, i) => ({ offerId: `offer-${i}`, title: `商品 ${i}` }));

describe('parsePayload', () => {
  it('has a schema for every job name', () => {
    expect(Object.keys(payloadSchemas).sort()).toEqual(Object.values(JobName).sort());
  });

  describe('product-ingest', () => {
    it('accepts upsert-products with or without a source, items passed through as given', () => {
      const items = products(2);
      expect(parsePayload(JobName.UpsertProducts, { products: items })).toEqual({ products: items });
      expect(parsePayload(JobName.UpsertProducts, { source: 'crawler-7', products: items })).toEqual({ source: 'crawler-7', products: items });
    });

    it('accepts upsert-suppliers', () => {
      const suppliers = [{ memberId: 'b2b-1', name: '义乌小商品' }];
      expect(parsePayload(JobName.UpsertSuppliers, { suppliers })).toEqual({ suppliers });
    });

    it('accepts a batch of exactly 1000 products', () => {
      expect(parsePayload(JobName.UpsertProducts, { products: products(1000) }).products).toHaveLength(1000);
    });

    it('rejects a batch of 1001 products, naming the field', () => {
      expect(problemWith(JobName.UpsertProducts, { products: products(1001) })).toMatch(/products/);
    });

    it('rejects an empty batch and a missing one, naming the field', () => {
      expect(problemWith(JobName.UpsertProducts, { products: [] })).toMatch(/products/);
      expect(problemWith(JobName.UpsertSuppliers, {})).toMatch(/suppliers/);
    });

    it('rejects items that are not objects, naming the item', () => {
      expect(problemWith(JobName.UpsertProducts, { products: [{ offerId: 'a' }, 'not-an-object'] })).toMatch(/products\.1/);
    });

    it('rejects an empty source, naming the field', () => {
      expect(problemWith(JobName.UpsertProducts, { source: '', products: products(1) })).toMatch(/source/);
    });
  });

  describe('image jobs', () => {
    it('accepts a download of an image id', () => {
      const imageId = randomUUID();
      expect(parsePayload(JobName.Download, { imageId })).toEqual({ imageId });
    });

    it('rejects an imageId that is not a UUID, naming the field', () => {
      expect(problemWith(JobName.Download, { imageId: 'image-42' })).toMatch(/imageId/);
      expect(problemWith(JobName.Download, {})).toMatch(/imageId/);
    });

    it('accepts a process job with a hex settings version', () => {
      const imageId = randomUUID();
      expect(parsePayload(JobName.Process, { imageId, settingsVersion: 'a1b2c3d4' })).toEqual({ imageId, settingsVersion: 'a1b2c3d4' });
    });

    it('rejects a settings version that is not a short lower-case hex hash, naming the field', () => {
      const imageId = randomUUID();
      expect(problemWith(JobName.Process, { imageId, settingsVersion: 'v1' })).toMatch(/settingsVersion/);
      expect(problemWith(JobName.Process, { imageId, settingsVersion: 'ABCDEF' })).toMatch(/settingsVersion/);
      expect(problemWith(JobName.Process, { imageId, settingsVersion: 'a'.repeat(65) })).toMatch(/settingsVersion/);
    });

    it('names every bad field at once', () => {
      const message = problemWith(JobName.Process, { imageId: 'nope', settingsVersion: 42 });
      expect(message).toMatch(/imageId/);
      expect(message).toMatch(/settingsVersion/);
    });
  });

  describe('maintenance jobs', () => {
    it('defaults consistency-check to report only (fix=false)', () => {
      expect(parsePayload(JobName.ConsistencyCheck, {})).toEqual({ fix: false });
      expect(parsePayload(JobName.ConsistencyCheck, undefined)).toEqual({ fix: false });
      expect(parsePayload(JobName.ConsistencyCheck, { fix: true })).toEqual({ fix: true });
    });

    it('rejects a non-boolean fix, naming the field', () => {
      expect(problemWith(JobName.ConsistencyCheck, { fix: 'yes' })).toMatch(/fix/);
    });

    it('defaults backup to a full, non-incremental backup', () => {
      expect(parsePayload(JobName.Backup, {})).toEqual({ kind: 'full', incremental: false });
      expect(parsePayload(JobName.Backup, null)).toEqual({ kind: 'full', incremental: false });
      expect(parsePayload(JobName.Backup, { kind: 'db', incremental: true })).toEqual({ kind: 'db', incremental: true });
    });

    it('rejects an unknown backup kind, naming the field', () => {
      expect(problemWith(JobName.Backup, { kind: 'everything' })).toMatch(/kind/);
    });

    it('accepts the jobs without data with no data, and drops unknown keys', () => {
      for (const name of [JobName.Reconcile, JobName.PruneBackups, JobName.VacuumAnalyze, JobName.PurgeDeleted, JobName.MaintainPartitions]) {
        expect(parsePayload(name, undefined)).toEqual({});
        expect(parsePayload(name, { stray: 1 })).toEqual({});
      }
    });
  });

  it('rejects an unknown job name', () => {
    expect(problemWith('bogus' as JobName, {})).toMatch(/unknown job name "bogus"/);
  });

  it('rejects data that is not an object, saying the data itself is wrong', () => {
    expect(problemWith(JobName.Download, 'a-string')).toMatch(/\(data\)/);
  });
});
