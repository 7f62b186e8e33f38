import postgres from 'postgres';

/**
 * A bank in a real PostgreSQL: money moves between accounts in transactions that also log each
 * transfer, so the total is invariant and the log must agree with every balance.
 */
export const accounts = 20;
export const opening = 1000;

export async function openBank(port: number): Promise<void> {
  const sql = postgres({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 1 });
  await sql`create table accounts (id int primary key, balance bigint not null)`;
  await sql`create table transfers (id bigserial primary key, src int not null, dst int not null, amount bigint not null)`;
  await sql`insert into accounts select g, ${opening} from generate_series(1, ${accounts}) g`;
  await sql.end();
}

/**
 * Transfers in a loop until stopped; returns how many committed. With a ledger service, each
 * committed transfer's id is then written to it too, as an application would to a second store.
 */
export function startTransfers(port: number, ledgerPort?: number): { stop: () => Promise<number> } {
  const sql = postgres({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 2 });
  let running = true;
  let done = 0;
  const loop = (async () => {
    while (running) {
      const src = 1 + Math.floor(Math.random() * accounts);
      const dst = 1 + ((src + Math.floor(Math.random() * (accounts - 1))) % accounts);
      const amount = 1 + Math.floor(Math.random() * 50);
      const id = await sql.begin(async (tx) => {
        await tx`update accounts set balance = balance - ${amount} where id = ${src}`;
        await tx`update accounts set balance = balance + ${amount} where id = ${dst}`;
        const [row] =
          await tx`insert into transfers (src, dst, amount) values (${src}, ${dst}, ${amount}) returning id`;
        return String(row!.id);
      });
      if (ledgerPort)
        await fetch(`http://127.0.0.1:${ledgerPort}/`, { method: 'POST', body: id }).then((r) => r.text());
      done++;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      await sql.end();
      return done;
    },
  };
}

/** The invariants a consistent copy of the bank satisfies. */
export async function auditBank(
  port: number,
  ledger?: string[],
): Promise<{ total: number; transfers: number; logAgrees: boolean; ledgerAgrees: boolean }> {
  const sql = postgres({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 1 });
  const [{ total }] = (await sql`select sum(balance)::int as total from accounts`) as unknown as [
    { total: number },
  ];
  const [{ n }] = (await sql`select count(*)::int as n from transfers`) as unknown as [{ n: number }];
  const [{ bad }] = (await sql`
    select count(*)::int as bad from accounts a
    where a.balance <> ${opening}
      - coalesce((select sum(amount) from transfers where src = a.id), 0)
      + coalesce((select sum(amount) from transfers where dst = a.id), 0)`) as unknown as [{ bad: number }];
  // The ledger is written just after each commit: a consistent copy of both can differ by the one
  // transfer that was between them at that instant, never more, and never lists one the bank lacks.
  let ledgerAgrees = true;
  if (ledger) {
    const ids = new Set((await sql`select id::text from transfers`).map((r) => r.id as string));
    ledgerAgrees = ledger.every((id) => ids.has(id)) && ids.size - new Set(ledger).size <= 1;
  }
  await sql.end();
  return { total, transfers: n, logAgrees: bad === 0, ledgerAgrees };
}
