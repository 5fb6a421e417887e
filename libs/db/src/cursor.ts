// Opaque keyset cursors: base64url of the last row's sort key plus a checksum, so a cursor that
// was garbled or edited is refused with a clear error instead of silently skipping rows.
import { createHash } from 'node:crypto';
import { InvalidCursorError } from './errors';

const checksum = (body: string) => createHash('sha256').update(`1688sync-cursor:${body}`).digest('base64url').slice(0, 12);

export function encodeCursor(payload: unknown): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${checksum(body)}`;
}

/** Decodes a cursor; `check` validates the payload's shape and returns it typed (or throws). */
export function decodeCursor<T>(cursor: string, check: (payload: unknown) => T): T {
  const [body, sum, extra] = cursor.split('.');
  if (!body || !sum || extra !== undefined || checksum(body) !== sum) throw new InvalidCursorError();
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  try {
    return check(payload);
  } catch {
    throw new InvalidCursorError();
  }
}
