import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { DomainError, type DomainErrorKind, invalid } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';

const statusOf: Record<DomainErrorKind, ContentfulStatusCode> = {
  malformed: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  too_many: 429,
  invalid: 422,
  unavailable: 503,
};

const httpCodes: Partial<Record<number, string>> = {
  400: 'malformed_request',
  413: 'body_too_large',
  415: 'unsupported_media_type',
};

// PostgreSQL keeps no NUL in text or jsonb, and answers one with these errors: the request's text is at fault.
const nulInText = new Set(['22021', '22P05']);

export interface ErrorBody {
  error: { code: string; message: string; field?: string; requestId: string };
}

/** An error answer; it names the request's id, which is on every line the request logged. */
export function errorBody(c: Context, error: Omit<ErrorBody['error'], 'requestId'>): ErrorBody {
  return { error: { ...error, requestId: c.get('requestId') } };
}

/** The first problem of a failed validation, named by its field path (e.g. services.0.name). */
export function validationError(error: z.ZodError, target: string): DomainError {
  const issue = error.issues[0]!;
  const path = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const field = [path, issue.keys[0]].filter(Boolean).join('.');
    return invalid(field, `unknown field (allowed fields are documented in /openapi.json)`);
  }
  const field = path || target;
  return invalid(field, issue.message);
}

/** The single place where errors become HTTP responses. Unknown errors are logged and never detailed. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof DomainError) {
      const body = errorBody(c, {
        code: err.code,
        message: err.message,
        ...(err.field && { field: err.field }),
      });
      return c.json(body, statusOf[err.kind]);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = httpCodes[status] ?? `http_${status}`;
      return c.json(errorBody(c, { code, message: err.message || 'bad request' }), status);
    }
    if (nulInText.has((err as { code?: string }).code ?? ''))
      return c.json(
        errorBody(c, {
          code: 'validation_failed',
          message: 'text must not contain NUL characters (\\u0000)',
        }),
        422,
      );
    // The request's own logger when it got that far, so the line carries its id.
    (c.get('log') ?? log).error({ err, method: c.req.method, path: c.req.path }, 'unhandled error');
    return c.json(errorBody(c, { code: 'internal', message: 'internal error' }), 500);
  };
}
