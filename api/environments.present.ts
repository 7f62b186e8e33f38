import { z } from '@hono/zod-openapi';
import { backupStrategySchema, serviceSpecSchema } from '../common/environment-spec.ts';
import type { Environment } from '../db/tables/environment.table.ts';

export const environmentSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    serverId: z.string(),
    services: z.array(serviceSpecSchema),
    backupStrategy: backupStrategySchema,
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Environment');

export const presentEnvironment = (e: Environment) => ({
  id: e.id,
  name: e.name,
  serverId: e.server_id,
  services: e.services,
  backupStrategy: e.backup_strategy,
  createdAt: e.created_at.toISOString(),
  updatedAt: e.updated_at.toISOString(),
});
