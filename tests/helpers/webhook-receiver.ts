import { createServer as createHttpServer, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';

export interface Received {
  event: string;
  delivery: string;
  /** Whether Standard Webhooks' own verifier accepted it with the secret. */
  valid: boolean;
  body: Record<string, unknown>;
  raw: string;
  headers: Record<string, string>;
}

/**
 * A customer's webhook receiver: checks each delivery with the `standardwebhooks` package's verifier
 * and the secret the API showed (`whsec_...`); answers as told, then 200.
 */
export async function startWebhookReceiver(): Promise<{
  url: string;
  received: Received[];
  secret: { value: string };
  answers: number[];
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  const answers: number[] = [];
  const secret = { value: '' };
  const server: Server = createHttpServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      const status = answers.shift() ?? 200;
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([name, value]) => [name, String(value)]),
      );
      let valid = true;
      try {
        new Webhook(secret.value).verify(raw, headers);
      } catch {
        valid = false;
      }
      const body = JSON.parse(raw) as Record<string, unknown>;
      if (status === 200)
        received.push({
          event: String(body.event),
          delivery: headers['webhook-id']!,
          valid,
          body,
          raw,
          headers,
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
