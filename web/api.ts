import type { Operation } from './types.ts';

// sessionStorage: the token lives as long as the tab, is never written to a URL, a cookie or a log,
// and is sent only as the Authorization header of this origin's API calls.
const tokenKey = 'strackt.teamToken';

export const session = {
  token: (): string | null => sessionStorage.getItem(tokenKey),
  signIn: (token: string) => sessionStorage.setItem(tokenKey, token),
  signOut: () => sessionStorage.removeItem(tokenKey),
};

/** An error answer of the API, with its code and, for a refused body, the field it names. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Told when the API refuses the token, so the page can ask for it again. */
let onUnauthorized = () => {};
export const whenUnauthorized = (handler: () => void) => (onUnauthorized = handler);

async function send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${session.token() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  // One key per click: a request retried by the browser or clicked twice starts one operation.
  if (method === 'POST') headers['idempotency-key'] = crypto.randomUUID();
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (res.ok) return res;
  const answer = (await res.json().catch(() => ({}))) as {
    error?: { code: string; message: string; field?: string };
  };
  if (res.status === 401) onUnauthorized();
  throw new ApiError(
    res.status,
    answer.error?.code ?? 'http_error',
    answer.error?.message ?? `${method} ${path}: ${res.status}`,
    answer.error?.field,
  );
}

/** One call of the JSON API with the session's token. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(method, path, body);
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/**
 * An operation's server-sent events, until it ends or `signal` aborts. Read through fetch rather
 * than EventSource, which cannot send the Authorization header (and the token stays out of the URL).
 */
export async function* operationEvents(id: string, signal: AbortSignal): AsyncGenerator<Operation> {
  const res = await send('GET', `/operations/${encodeURIComponent(id)}/events`, undefined, signal);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const data = buffered
        .slice(0, end)
        .split('\n')
        .find((line) => line.startsWith('data: '));
      buffered = buffered.slice(end + 2);
      if (data) yield JSON.parse(data.slice('data: '.length)) as Operation;
    }
  }
}
