import { sql, type RawBuilder } from 'kysely';

/**
 * A value for a jsonb column. postgres.js serialises parameters by the type the server infers, so a
 * JSON string bound straight to jsonb would be stored as a JSON string; binding it as text and
 * casting stores the document itself.
 */
export function jsonb<T>(value: T): RawBuilder<T> {
  return sql<T>`(${JSON.stringify(value)}::text)::jsonb`;
}
