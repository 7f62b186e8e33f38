import { randomBytes } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

export type IdKind =
  | 'team'
  | 'tok'
  | 'srv'
  | 'env'
  | 'op'
  | 'sec'
  | 'dst'
  | 'snap'
  | 'pack'
  | 'sch'
  | 'whk'
  | 'whd'
  | 'task'
  | 'req';

/** Prefixed ids say what they name in logs, URLs and the Temporal UI; 80 random bits each. */
export function newId(kind: IdKind): string {
  const bytes = randomBytes(16);
  let out = '';
  for (const byte of bytes) out += alphabet[byte & 31];
  return `${kind}_${out}`;
}

export const idPattern = (kind: IdKind) => new RegExp(`^${kind}_[a-z2-7]{16}$`);

/**
 * What an id a request names may be made of, whatever its kind: refused otherwise before any query
 * (PostgreSQL answers a NUL in text with an error, which the API turned into a 500).
 */
export const idCharacters = /^[A-Za-z0-9_-]*$/;
