// What PostgreSQL text and jsonb can hold, decided in one place. Neither takes the NUL character
// (text: "invalid byte sequence", jsonb: "unsupported Unicode escape sequence"), and jsonb refuses
// a lone UTF-16 surrogate: JSON.stringify writes it as the escape "\ud800", which jsonb rejects as
// "invalid input syntax for type json" (text would silently store U+FFFD instead). A hostile or
// broken producer sends both; validation refuses them naming the field (isPgSafeText,
// pgTextProblem), and what we record about such input (sync record errors, messages) stores a
// cleaned copy (pgSafeText, pgSafeJson) so the record of a bad batch never fails itself.
import { InvalidInputError } from './errors';

/** A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const PG_UNSAFE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const PG_UNSAFE_ALL = new RegExp(PG_UNSAFE.source, 'g');

export const NUL_PROBLEM = 'must not contain the NUL character (\\u0000)';
export const LONE_SURROGATE_PROBLEM = 'must not contain a lone UTF-16 surrogate (\\ud800-\\udfff); send well-formed Unicode';

/** Whether PostgreSQL text and jsonb can store `s` as it is. */
export function isPgSafeText(s: string): boolean {
  return !PG_UNSAFE.test(s);
}

/** Why PostgreSQL cannot store `s` ("must not contain …"), or null when it can. */
export function pgTextProblem(s: string): string | null {
  const found = PG_UNSAFE.exec(s);
  if (!found) return null;
  return found[0] === '\u0000' ? NUL_PROBLEM : LONE_SURROGATE_PROBLEM;
}

/** `s` with every NUL and lone surrogate replaced by U+FFFD, the character Unicode keeps for "unreadable". */
export function pgSafeText(s: string): string {
  return PG_UNSAFE.test(s) ? s.replace(PG_UNSAFE_ALL, '\uFFFD') : s;
}

/**
 * A copy of a JSON value that jsonb can store: strings and object keys cleaned with pgSafeText.
 * Objects are rebuilt with Object.fromEntries so a `__proto__` key stays an ordinary data key.
 */
export function pgSafeJson<T>(value: T): T {
  if (typeof value === 'string') return pgSafeText(value) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((v) => pgSafeJson(v)) as T;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [pgSafeText(k), pgSafeJson(v)])) as T;
}

/**
 * Throws InvalidInputError naming the first field (dotted path) whose text PostgreSQL cannot
 * store: a string holding a NUL or a lone surrogate, or an object key holding one.
 */
export function assertPgSafe(value: unknown, path: string): void {
  if (typeof value === 'string') {
    const problem = pgTextProblem(value);
    if (problem) throw new InvalidInputError(path, problem);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertPgSafe(v, `${path}[${i}]`));
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const problem = pgTextProblem(k);
    if (problem) throw new InvalidInputError(path, `${problem} in a key`);
    assertPgSafe(v, `${path}.${k}`);
  }
}
