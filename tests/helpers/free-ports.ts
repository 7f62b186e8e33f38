import { createServer, type Server } from 'node:net';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(port, '127.0.0.1', () => resolve(server));
    server.once('error', reject);
  });
}

const close = (servers: Server[]) => Promise.all(servers.map((s) => new Promise((r) => s.close(r))));

/** Distinct free loopback ports: all are held open until all are chosen, so none is handed out twice. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => listen(0)));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await close(servers);
  return ports;
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * Distinct free loopback ports under 32768, below the kernel's ephemeral range (which port 0 picks
 * from): Temporal keeps its membership ports in a PostgreSQL smallint. Tried at random, so two test
 * runs at once rarely reach for the same one, and held open until all are chosen.
 */
export async function freePortsBelow32768(count: number): Promise<number[]> {
  const held: Server[] = [];
  for (let tries = 0; held.length < count; tries++) {
    if (tries > 200) throw new Error(`no ${count} free ports under 32768`);
    held.push(
      ...(await listen(10_000 + Math.floor(Math.random() * 22_768)).then(
        (s) => [s],
        () => [],
      )),
    );
  }
  const ports = held.map((s) => (s.address() as { port: number }).port);
  await close(held);
  return ports;
}
