import { createConnection, createServer, type Socket } from 'node:net';

export interface FailoverProxy {
  url: string;
  /** Connections handed to each upstream so far, by its port. */
  connections: Map<number, number>;
  close: () => Promise<void>;
}

/**
 * A TCP proxy in front of API replicas, standing in for the load balancer of docs/DEPLOYMENT.md: each
 * new connection goes to the next replica in turn, and on to the following one when that one refuses
 * it (nginx's `proxy_next_upstream error`). Connections already made die with their replica, as they
 * would behind a real balancer: the client sees its request fail and makes a new one.
 */
export async function startFailoverProxy(upstreamPorts: number[]): Promise<FailoverProxy> {
  const connections = new Map(upstreamPorts.map((p) => [p, 0]));
  const open = new Set<Socket>();
  let next = 0;

  const connect = (client: Socket, tried: number) => {
    if (tried === upstreamPorts.length) return client.destroy();
    const port = upstreamPorts[next++ % upstreamPorts.length]!;
    const upstream = createConnection({ host: '127.0.0.1', port });
    const refused = () => connect(client, tried + 1);
    upstream.once('error', refused);
    upstream.once('connect', () => {
      upstream.off('error', refused);
      if (client.destroyed) return upstream.destroy();
      connections.set(port, connections.get(port)! + 1);
      open.add(upstream);
      upstream.once('close', () => open.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
      client.once('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client);
    client.on('error', () => client.destroy());
    client.once('close', () => open.delete(client));
    connect(client, 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    connections,
    close: async () => {
      const closed = new Promise((r) => server.close(r));
      for (const socket of open) socket.destroy();
      await closed;
    },
  };
}
