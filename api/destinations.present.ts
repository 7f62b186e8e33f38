import { z } from '@hono/zod-openapi';
import type { Destination } from '../db/tables/destination.table.ts';

export const destinationSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(['s3', 'receiver']),
    endpoint: z.string().nullable(),
    region: z.string().nullable(),
    bucket: z.string().nullable(),
    prefix: z.string(),
    pathStyle: z.boolean().nullable(),
    accessKeyId: z
      .string()
      .nullable()
      .openapi({ description: 'Only its last characters (null for a receiver)', example: '…WXYZ' }),
    receiver: z
      .object({
        url: z.string(),
        fingerprint: z.string().nullable().openapi({ description: 'The pinned certificate’s SHA-256' }),
        customCa: z.boolean().openapi({ description: 'Trusted through a CA the team gave instead of a pin' }),
      })
      .nullable()
      .openapi({ description: 'For a receiver: where it is and how its certificate is trusted' }),
    createdAt: z.string(),
    updatedAt: z.string(),
    lastCheckedAt: z.string().nullable().openapi({ description: 'When the connectivity check last passed' }),
  })
  .openapi('Destination');

/** The key id's tail tells keys apart; of a short one, no more than a third is shown. */
export function maskAccessKeyId(accessKeyId: string): string {
  const shown = Math.min(4, Math.floor(accessKeyId.length / 3));
  return `…${accessKeyId.slice(accessKeyId.length - shown)}`;
}

// The secret access key is not in here, and there is no field of any response it could go into.
export const presentDestination = (d: Destination): z.infer<typeof destinationSchema> => ({
  id: d.id,
  name: d.name,
  kind: d.kind,
  endpoint: d.endpoint,
  region: d.region,
  bucket: d.bucket,
  prefix: d.prefix,
  pathStyle: d.kind === 's3' ? d.path_style : null,
  accessKeyId: d.access_key_id === null ? null : maskAccessKeyId(d.access_key_id),
  receiver:
    d.kind === 'receiver'
      ? { url: d.receiver_url!, fingerprint: d.receiver_fingerprint, customCa: d.receiver_ca !== null }
      : null,
  createdAt: d.created_at.toISOString(),
  updatedAt: d.updated_at.toISOString(),
  lastCheckedAt: d.last_checked_at?.toISOString() ?? null,
});
