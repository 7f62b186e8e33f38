import type { IncomingHttpHeaders } from 'node:http';
import { CertificateMismatchError, pinnedRequest, type TlsPin } from './pinned-client.ts';
import { checkOutboundUrl, lookupFor, portOf } from '../common/outbound-guard.ts';

/** A receiver's refusal, with its status and code. */
export class ReceiverError extends Error {
  override name = 'ReceiverError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ReceiverAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const maxAnswerBytes = 16 << 20;

/**
 * One request from the control plane to a receiver over a pinned connection. Answers whatever the
 * receiver said (the caller decides what a status means); throws only when no answer came, or the
 * certificate was not the trusted one (CertificateMismatchError).
 */
export async function receiverRequest(
  url: URL,
  pin: TlsPin,
  {
    method,
    headers = {},
    body,
    timeoutMs = 30_000,
  }: {
    method: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
    timeoutMs?: number;
  },
): Promise<ReceiverAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  // The receiver is a team's address: reached only where the outbound guard allows.
  checkOutboundUrl(url);
  const req = await pinnedRequest(
    url,
    pin,
    {
      method,
      headers: {
        ...headers,
        ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }),
      },
      signal,
    },
    lookupFor(portOf(url)),
  );
  return new Promise((resolve, reject) => {
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxAnswerBytes) res.destroy(new Error('the receiver’s answer is too large'));
        else chunks.push(chunk);
      });
      res.once('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.once('error', reject);
    });
    req.once('error', (err) =>
      reject(
        err instanceof CertificateMismatchError
          ? err
          : signal.aborted
            ? new Error(`the receiver at ${url.host} did not answer in ${timeoutMs / 1000} s`)
            : err,
      ),
    );
    req.end(body);
  });
}

/** The receiver's refusal as an error, from its JSON answer (its code only when shaped like one). */
export function receiverError(answer: ReceiverAnswer, doing: string): ReceiverError {
  let code = `http_${answer.status}`;
  let message = '';
  try {
    const error = (
      JSON.parse(answer.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } }
    ).error;
    if (typeof error?.code === 'string' && /^[a-z_]{1,40}$/.test(error.code)) code = error.code;
    if (typeof error?.message === 'string') message = error.message.slice(0, 300);
  } catch {
    // no JSON: the status says it
  }
  return new ReceiverError(
    answer.status,
    code,
    `the receiver refused ${doing}: ${code}${message ? ` (${message})` : ''}`,
  );
}
