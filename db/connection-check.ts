import postgres from 'postgres';

/** host:port/database of a connection URL, without the credentials, for messages and logs. */
export function describeDatabaseUrl(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/**
 * Creates the database if it is missing (the server must answer), so a fresh machine needs no
 * manual createdb. Answers with a message naming where it looked when the server does not answer.
 */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const u = new URL(databaseUrl);
  const name = decodeURIComponent(u.pathname.slice(1));
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${name}`;
    if (rows.length === 0) await sql.unsafe(`create database "${name.replace(/"/g, '""')}"`);
  } catch (err) {
    if ((err as { code?: string }).code === '42P04') return; // created meanwhile by another process
    const e = err as NodeJS.ErrnoException;
    throw new DatabaseUnreachableError(
      `cannot reach PostgreSQL at ${describeDatabaseUrl(databaseUrl)} (DATABASE_URL): ${e.code ?? ''} ${e.message}`.trim(),
    );
  } finally {
    await sql.end({ timeout: 1 });
  }
}
