import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context, Env } from 'hono';
import { idCharacters } from '../common/ids.ts';
import { validationError } from './errors.ts';

export type TeamEnv = { Variables: { teamId: string } };

/** Every router validates the same way: the first bad field becomes a 422 naming it. */
export function newRouter<E extends Env = TeamEnv>(): OpenAPIHono<E> {
  return new OpenAPIHono<E>({
    defaultHook: (result, _c) => {
      if (!result.success) throw validationError(result.error as z.ZodError, result.target);
    },
  });
}

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }),
});

export const errorResponses = {
  401: { description: 'Missing or invalid token', content: { 'application/json': { schema: errorSchema } } },
  404: { description: 'Not found in this team', content: { 'application/json': { schema: errorSchema } } },
  422: {
    description: 'Invalid input; names the field',
    content: { 'application/json': { schema: errorSchema } },
  },
} as const;

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
