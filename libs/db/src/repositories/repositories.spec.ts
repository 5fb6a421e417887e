import type { EntityManager } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { ProductRepository } from './product.repository';
import { Repositories } from './repositories';
import { SupplierRepository } from './supplier.repository';

describe('Repositories', () => {
  it('builds each repository on the given manager once, on first use', () => {
    const manager = { connection: {} } as unknown as EntityManager;
    const repos = new Repositories(manager);
    expect(repos.products).toBeInstanceOf(ProductRepository);
    expect(repos.products).toBe(repos.products);
    expect(repos.suppliers).toBeInstanceOf(SupplierRepository);
    expect(repos.manager).toBe(manager);
  });
});
