/**
 * Errors the domain raises on purpose. The kind decides the HTTP status in one place (api/errors.ts);
 * the code is the stable, machine-readable name a client can branch on.
 */
export type DomainErrorKind =
  | 'malformed'
  | 'invalid'
  | 'unauthorized'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'too_many'
  | 'unavailable';

export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly kind: DomainErrorKind,
    readonly code: string,
    message: string,
    /** The request field at fault: for validation errors, and for a failed check the field to change. */
    readonly field?: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string, id: string) =>
  new DomainError('not_found', `${what}_not_found`, `${what} ${id} not found`);

export const invalid = (field: string, problem: string) =>
  new DomainError('invalid', 'validation_failed', `${field}: ${problem}`, field);

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint_name?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint_name === constraint);
}

/** A row still referred to by another table's foreign key (one without cascade). */
export function isForeignKeyViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === '23503';
}
