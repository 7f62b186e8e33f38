import { z } from 'zod';
import { namePattern, nameRule } from './names.ts';

export const nameSchema = z.string().regex(namePattern, nameRule);

const portSchema = z.number().int().min(1).max(65535);

export const healthCheckSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('http'),
    port: portSchema,
    path: z.string().startsWith('/').max(2048).default('/'),
  }),
  z.strictObject({ type: z.literal('tcp'), port: portSchema }),
  z.strictObject({ type: z.literal('command'), command: z.string().min(1).max(4096) }),
]);

/**
 * Commands run in the service's own environment around a backup's capture: `pre` before it (pg_dump
 * into the volume, a CHECKPOINT), `post` after it, always, also when the capture failed.
 */
export const backupHooksSchema = z.strictObject({
  pre: z.string().min(1).max(16384).optional(),
  post: z.string().min(1).max(16384).optional(),
  timeoutSeconds: z.number().int().min(1).max(3600).default(300),
});

export const serviceSpecSchema = z.strictObject({
  name: nameSchema,
  command: z.string().min(1).max(16384),
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name'),
      z.string().max(65536),
    )
    .default({}),
  workingDir: z.string().startsWith('/', 'must be an absolute path').max(4096).optional(),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a Unix user name')
    .optional(),
  volumes: z.array(nameSchema).max(32).default([]),
  healthCheck: healthCheckSchema.optional(),
  healthTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
  stopSignal: z.enum(['SIGTERM', 'SIGINT', 'SIGQUIT']).default('SIGTERM'),
  stopTimeoutSeconds: z.number().int().min(1).max(600).default(10),
  backupHooks: backupHooksSchema.optional(),
});

/**
 * How a backup holds the whole environment still: `freeze` pauses every process (SIGSTOP) while the
 * volumes are read, `stop` stops the services and starts them again, `none` relies on hooks alone.
 */
export const backupStrategySchema = z.enum(['freeze', 'stop', 'none']);
export type BackupStrategy = z.infer<typeof backupStrategySchema>;

export const servicesSchema = z
  .array(serviceSpecSchema)
  .min(1)
  .max(50)
  .superRefine((services, ctx) => {
    const seen = new Set<string>();
    services.forEach((s, i) => {
      if (seen.has(s.name))
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate service name "${s.name}"` });
      seen.add(s.name);
    });
  });

export type HealthCheck = z.infer<typeof healthCheckSchema>;
export type ServiceSpec = z.infer<typeof serviceSpecSchema>;

/** What an agent needs to run an environment; fetched by the agent over HTTPS, never via Temporal history. */
export const environmentSpecSchema = z.object({
  environmentId: z.string(),
  teamId: z.string(),
  name: nameSchema,
  services: z.array(serviceSpecSchema),
  backupStrategy: backupStrategySchema,
});
export type EnvironmentSpec = z.infer<typeof environmentSpecSchema>;
