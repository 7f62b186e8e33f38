import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Env } from 'hono';
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
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
    requestId: z.string(),
  }),
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
