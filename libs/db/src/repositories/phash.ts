// The perceptual hash between its two spellings: 16 hex characters in the API and the code, a
// signed 64-bit bigint in PostgreSQL (so `#` and bit_count work on it, and it takes 8 bytes).
import { InvalidInputError } from '../errors';

const HEX = /^[0-9a-f]{16}$/;

/** 16 hex characters → the decimal text of PostgreSQL's signed bigint. */
export function phashToSql(hex: string): string {
  if (!HEX.test(hex)) throw new InvalidInputError('phash', 'must be 16 lower-case hex characters');
  return BigInt.asIntN(64, BigInt(`0x${hex}`)).toString();
}

/** PostgreSQL's bigint (as node-postgres returns it, text) → 16 hex characters. */
export function phashFromSql(value: string | null): string | null {
  if (value === null) return null;
  return BigInt.asUintN(64, BigInt(value)).toString(16).padStart(16, '0');
}
