import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { idCharacters } from '../common/ids.ts';
import type { Page, PageKey, PageRequest } from '../db/keyset.ts';

const defaultPageSize = 50;
const maxPageSize = 200;

const keyTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

/** A cursor is opaque to clients: base64url of the last row's sort key. */
function encodeCursor(key: PageKey): string {
  return Buffer.from(JSON.stringify([key.at, key.id])).toString('base64url');
}

/** The key a cursor holds, or undefined for anything this API did not hand out. */
export function decodeCursor(cursor: string): PageKey | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(key) || key.length !== 2) return undefined;
  const [at, id] = key as unknown[];
  // Checked here so that neither value reaches SQL unless it is the shape we wrote, and a real instant
  // PostgreSQL takes (not 30 February, which Date.parse rolls over and PostgreSQL refuses with an error).
  if (typeof at !== 'string' || !keyTime.test(at)) return undefined;
  const ms = Date.parse(at);
  if (!(ms >= 0) || new Date(ms).toISOString().slice(0, 23) !== at.slice(0, 23)) return undefined;
  if (typeof id !== 'string' || id.length > 64 || !idCharacters.test(id)) return undefined;
  return { at, id };
}

/** The query of every list: page size and where to go on from. */
export const pageQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(maxPageSize)
    .default(defaultPageSize)
    .openapi({ description: `Items per page, 1 to ${maxPageSize}`, example: defaultPageSize }),
  cursor: z
    .string()
    .max(300)
    .refine((s) => decodeCursor(s) !== undefined, 'not a cursor of this API: take the `next` link of a page')
    .optional()
    .openapi({ description: 'From the `next` link of the previous page; opaque' }),
});

/** What a list handler passes to its data function, from a query pageQuery has checked. */
export function pageRequest(query: { limit: number; cursor?: string }): PageRequest {
  return { limit: query.limit, ...(query.cursor !== undefined && { after: decodeCursor(query.cursor)! }) };
}

/** The link to the page after this one (the same path and filters), or null on the last page. */
function nextLink(c: Context, page: Page<unknown>, limit: number): string | null {
  if (!page.next) return null;
  const url = new URL(c.req.url);
  url.searchParams.set('limit', String(limit));
  url.searchParams.set('cursor', encodeCursor(page.next));
  return `${url.pathname}${url.search}`;
}

/** A list's answer: the page's rows, presented, under the key the list has always used, and `next`. */
export function pageBody<K extends string, T, R>(
  c: Context,
  key: K,
  page: Page<T>,
  limit: number,
  present: (row: T) => R,
) {
  return { [key]: page.rows.map(present), next: nextLink(c, page, limit) } as { [P in K]: R[] } & {
    next: string | null;
  };
}

/** The schema of such an answer. */
export const pageSchema = <K extends string, T extends z.ZodType>(key: K, item: T) =>
  z.object({
    [key]: z.array(item),
    next: z
      .string()
      .nullable()
      .openapi({ description: 'The path of the next page (with limit and cursor); null on the last page' }),
  } as { [P in K]: z.ZodArray<T> } & { next: z.ZodNullable<z.ZodString> });
