import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context, Env } from 'hono';
import { idCharacters } from '../common/ids.ts';
import { validationError } from './errors.ts';

export type TeamEnv = { Variables: { teamId: string; tokenId: string } };

/** Every router validates the same way: the first bad field becomes a 422 naming it. */
export function newRouter<E extends Env = TeamEnv>(): OpenAPIHono<E> {
  return new OpenAPIHono<E>({
    defaultHook: (result, _c) => {
      if (!result.success) throw validationError(result.error as z.ZodError, result.target);
    },
  });
}

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      field: z.string().optional().openapi({
        description:
          'The request field at fault (a path such as services.0.name), or for a failed destination check the field to change, when one is the fix',
      }),
      requestId: z.string(),
    }),
  })
  .openapi('Error');

const errorDescriptions = {
  400: 'Malformed request: the body is not JSON',
  404: 'Not found (another team’s resource is not found either)',
  409: 'In conflict with the current state; the message says with what',
  413: 'Request body over 1 MiB',
  415: 'The body is not application/json',
  422: 'Invalid input; names the field',
  429: 'Too many at once: the message says of what; retry when one has ended',
  503: 'Temporal (the workflow engine) or the storage cannot be reached; try again',
} as const;

/** What any route with a JSON body may answer besides its own errors: see jsonBody and app.ts's body limit. */
export const bodyErrors = [400, 413, 415, 422] as const;

/**
 * A route's error answers, all with the one error body. 401 and 500 are every route's: each needs a
 * token, and an unexpected failure is answered without details (errors.ts). A route that says more
 * about a code than these descriptions declares it itself, `409: jsonResponse(errorSchema, '...')`.
 */
export function errorResponses<const S extends (keyof typeof errorDescriptions)[]>(...statuses: S) {
  const answer = (description: string) => ({
    description,
    content: { 'application/json': { schema: errorSchema } },
  });
  return {
    401: answer('Missing, malformed or revoked token'),
    500: answer('Internal error; the details are only in the API’s log'),
    ...(Object.fromEntries(statuses.map((s) => [s, answer(errorDescriptions[s])])) as Record<
      S[number],
      ReturnType<typeof answer>
    >),
  };
}

/** An id as a request names one, in a path or a body; found or not found, never a 500. */
export const idString = z.string().max(64).regex(idCharacters, 'must be an id: letters, digits, _ and -');

export const idParam = (name: string) =>
  z.object({
    id: idString.openapi({ param: { name: 'id', in: 'path' }, example: name }),
  });

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/**
 * Marks an answer that carries a secret shown only once (a key, a token): no cache along the way may
 * keep a copy, and neither does the Idempotency-Key record of the request (api/idempotency.ts).
 */
export const holdsSecret = (c: Context) => c.header('cache-control', 'no-store');

/** An answer with a Location: the resource a 201 made, or the operation a 202 started (/operations/{id}). */
export const locatedResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  ...jsonResponse(schema, description),
  headers: z.object({
    location: z
      .string()
      .openapi({ description: 'The path of what was made or started', example: '/operations/op_...' }),
  }),
});
