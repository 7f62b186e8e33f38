import { createServer as createHttpServer, type Server } from 'node:http';
import { verifyWebhook } from '../../common/webhook-events.ts';

export interface Received {
  event: string;
  delivery: string;
  valid: boolean;
  body: Record<string, unknown>;
}

/** A customer's webhook receiver: checks each signature with the secret; answers as told, then 200. */
export async function startWebhookReceiver(): Promise<{
  url: string;
  received: Received[];
  secret: { value: Buffer };
  answers: number[];
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  const answers: number[] = [];
  const secret = { value: Buffer.alloc(0) };
  const server: Server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const status = answers.shift() ?? 200;
      if (status === 200)
        received.push({
          event: String(req.headers['x-strackt-event']),
          delivery: String(req.headers['x-strackt-delivery']),
          valid: verifyWebhook(
            secret.value,
            {
              timestamp: req.headers['x-strackt-timestamp'] as string | undefined,
              signature: req.headers['x-strackt-signature'] as string | undefined,
            },
            body,
          ),
          body: JSON.parse(body) as Record<string, unknown>,
        });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks/strackt`,
    received,
    secret,
    answers,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
