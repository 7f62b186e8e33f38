import { sql, type SelectQueryBuilder } from 'kysely';

/** Where a page starts: just after the row with this sort key (its time, then its id, both descending). */
export interface PageKey {
  /** RFC 3339 with microseconds, UTC: the column's full precision, which a JS Date would cut to ms. */
  at: string;
  id: string;
}

export interface PageRequest {
  limit: number;
  after?: PageKey;
}

export interface Page<T> {
  rows: T[];
  /** The last row's key when more rows follow; absent on the last page. */
  next?: PageKey;
}

/**
 * One page of a query, newest first, by keyset: `(at, id) < after`, so rows added or removed while a
 * client walks the pages never shift what the next page holds (an offset would repeat or skip rows).
 * `columns` name the timestamp and the unique id that order the rows, e.g. created_at and id.
 */
export async function keysetPage<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  columns: { at: string; id: string },
  { limit, after }: PageRequest,
): Promise<Page<O>> {
  const at = sql.ref(columns.at);
  const id = sql.ref(columns.id);
  let paged = query
    .select(sql<string>`to_char(${at} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('page_at'))
    .select(sql<string>`${id}`.as('page_id'))
    .orderBy(at, 'desc')
    .orderBy(id, 'desc')
    // One more than asked: whether it exists says whether there is a next page.
    .limit(limit + 1);
  // The time goes as text: postgres.js sends a timestamptz parameter through a JS Date, to the ms.
  if (after)
    paged = paged.where(sql<boolean>`(${at}, ${id}) < (${after.at}::text::timestamptz, ${after.id})`);
  const found = (await paged.execute()) as (O & { page_at: string; page_id: string })[];
  const rows = found.slice(0, limit).map(({ page_at: _at, page_id: _id, ...row }) => row as O);
  const last = found[limit - 1];
  return found.length > limit && last ? { rows, next: { at: last.page_at, id: last.page_id } } : { rows };
}
