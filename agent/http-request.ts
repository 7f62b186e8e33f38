import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  body: string;
}

// Kept alive: an agent polls the API all day, and a new TLS handshake per poll would cost both sides.
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/**
 * A small request with its whole answer read as text, on Node's http module rather than fetch: the
 * agent's few calls do not need fetch, whose first use costs ~13 MiB of RSS (undici) against ~4 for
 * http, a fifth of an idle agent's budget. Redirects are not followed. Rejects on `signal`.
 */
/** What the agent reads of an answer at most, unless a call says otherwise: its memory stays bounded. */
export const maxAnswerBytes = 1024 * 1024;

export function httpRequest(
  url: URL,
  {
    method = 'GET',
    headers = {},
    body,
    signal,
    maxBodyBytes = maxAnswerBytes,
    statusOnly = false,
  }: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    signal?: AbortSignal;
    maxBodyBytes?: number;
    /** Answer with the status alone, the body left unread (a health probe of any page). */
    statusOnly?: boolean;
  } = {},
): Promise<HttpAnswer> {
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      url,
      {
        method,
        agent: agents[url.protocol as keyof typeof agents],
        headers: { ...headers, ...(body !== undefined && { 'content-length': Buffer.byteLength(body) }) },
        signal,
      },
      (res) => {
        if (statusOnly) {
          res.destroy();
          return resolve({ status: res.statusCode ?? 0, body: '' });
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBodyBytes)
            req.destroy(new Error(`answer from ${url.host} over ${maxBodyBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
