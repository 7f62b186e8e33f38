import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Env } from 'hono';
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

export const idParam = (name: string) =>
  z.object({
    id: z
      .string()
      .max(64)
      .openapi({ param: { name: 'id', in: 'path' }, example: name }),
  });

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
