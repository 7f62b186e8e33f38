import http from 'node:http';
import https from 'node:https';
import { checkOutboundUrl, lookupFor, OutboundRefused, portOf } from '../common/outbound-guard.ts';

/**
 * POSTs a delivery to a team's webhook URL through the outbound guard (at an address it allows, the one
 * it checked), following no redirect; answers the status. The body of the answer is never read.
 */
export function postWebhook(
  url: URL,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<number> {
  checkOutboundUrl(url);
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: lookupFor(portOf(url)),
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode!);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * Why a delivery did not reach its URL, in words that say nothing about what else is on the network
 * (kept in the delivery log, which the team reads).
 */
export function unreachableReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof OutboundRefused || e.code === 'EOUTBOUNDREFUSED')
    return 'the address is not one strackt connects to';
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'ETIMEDOUT') return 'timed out';
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return 'the name does not resolve';
  if (/CERT|TLS|SSL/.test(e.code ?? '')) return 'the TLS handshake failed';
  return 'could not connect';
}
