// Keyset pages newest-first by (timestamp column, id) for the simple lists (suppliers, sync
// records). The cursor carries the last row's timestamp as exact text — to the microsecond, which
// a JS Date would lose, and rows of one batch share one timestamp — plus its id.
import { isUuid } from '@1688sync/core';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { decodeCursor, encodeCursor } from '../cursor';
import { InvalidInputError } from '../errors';

export interface Page<T> {
  items: T[];
  /** Null on the last page. */
  nextCursor: string | null;
}

const EXACT_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export async function keysetPage<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  alias: string,
  column: string,
  { limit = 50, cursor, includeDeleted = false, scope }: { limit?: number; cursor?: string; includeDeleted?: boolean; scope: string },
): Promise<Page<T>> {
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new InvalidInputError('limit', 'must be a whole number from 1 to 200');
  const key = `to_char(${alias}.${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  qb.addSelect(key, 'cursor_key').orderBy(`${alias}.${column}`, 'DESC').addOrderBy(`${alias}.id`, 'DESC').limit(limit + 1);
  if (includeDeleted) qb.withDeleted();
  if (cursor) {
    const [, at, id] = decodeCursor(cursor, (p) => {
      // A cursor of another list (or another filter) is refused like a tampered one.
      if (!Array.isArray(p) || p.length !== 3 || p[0] !== scope || !EXACT_TS.test(p[1]) || !isUuid(p[2])) throw new Error('shape');
      return p as [string, string, string];
    });
    qb.andWhere(`(${alias}.${column}, ${alias}.id) < (:cursorAt::timestamptz, :cursorId::uuid)`, { cursorAt: at, cursorId: id });
  }
  const { entities, raw } = await qb.getRawAndEntities();
  const items = entities.slice(0, limit);
  const last = raw[items.length - 1] as { cursor_key: string } | undefined;
  const more = entities.length > limit;
  return { items, nextCursor: more && last ? encodeCursor([scope, last.cursor_key, (items[items.length - 1] as unknown as { id: string }).id]) : null };
}
