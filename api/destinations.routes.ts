import { createRoute, z } from '@hono/zod-openapi';
import {
  accessKeyIdSchema,
  bucketSchema,
  connectionFields,
  endpointSchema,
  prefixSchema,
  regionSchema,
  s3LocationOf,
  secretAccessKeySchema,
  type DestinationConnection,
} from '../common/destination-spec.ts';
import { nameSchema } from '../common/environment-spec.ts';
import type { Db } from '../db/database.ts';
import {
  createDestination,
  deleteDestination,
  getDestination,
  listDestinations,
  openDestination,
  recordChecked,
  updateDestination,
} from '../db/destinations.data.ts';
import type { Destination } from '../db/tables/destination.table.ts';
import { createTeamKeyIfMissing } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { checkDestination } from '../storage/connectivity-check.ts';
import { errorResponses, errorSchema, idParam, jsonBody, jsonResponse, newRouter } from './router.ts';
import { newTeamKeySchema, presentNewTeamKey } from './team.routes.ts';

const destinationSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.literal('s3'),
    endpoint: z.string().nullable(),
    region: z.string(),
    bucket: z.string(),
    prefix: z.string(),
    pathStyle: z.boolean(),
    accessKeyId: z.string().openapi({ description: 'Only its last characters', example: '…WXYZ' }),
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
const present = (d: Destination): z.infer<typeof destinationSchema> => ({
  id: d.id,
  name: d.name,
  kind: d.kind,
  endpoint: d.endpoint,
  region: d.region,
  bucket: d.bucket,
  prefix: d.prefix,
  pathStyle: d.path_style,
  accessKeyId: maskAccessKeyId(d.access_key_id),
  createdAt: d.created_at.toISOString(),
  updatedAt: d.updated_at.toISOString(),
  lastCheckedAt: d.last_checked_at?.toISOString() ?? null,
});

const endpointField = endpointSchema.nullable().optional().openapi({
  description: 'The S3 API endpoint (http or https); omitted or null for AWS S3 itself',
  example: 'https://fsn1.your-objectstorage.com',
});
const secretField = secretAccessKeySchema.openapi({
  description: 'Write-only: sealed in the vault, never returned',
  format: 'password',
});

const createBody = z.strictObject({
  name: nameSchema,
  endpoint: endpointField,
  region: regionSchema.default('us-east-1'),
  bucket: bucketSchema,
  prefix: prefixSchema.default(''),
  pathStyle: z.boolean().default(true),
  accessKeyId: accessKeyIdSchema,
  secretAccessKey: secretField,
});

const patchBody = z.strictObject({
  name: nameSchema.optional(),
  endpoint: endpointField,
  region: regionSchema.optional(),
  bucket: bucketSchema.optional(),
  prefix: prefixSchema.optional(),
  pathStyle: z.boolean().optional(),
  accessKeyId: accessKeyIdSchema.optional(),
  secretAccessKey: secretField.optional(),
});

const checkFailed = {
  422: jsonResponse(
    errorSchema,
    'Invalid input (names the field), or the connectivity check failed; the code says how: bad_credentials, ' +
      'no_such_bucket, access_denied, endpoint_unreachable, tls_failure, readback_mismatch, wrong_region, check_failed',
  ),
};

export function destinationsRoutes({ db, vault }: { db: Db; vault: Vault }) {
  return newRouter()
    .openapi(
      createRoute({
        method: 'get',
        path: '/',
        summary: "List the team's backup destinations (never their secret keys)",
        responses: {
          200: jsonResponse(z.object({ destinations: z.array(destinationSchema) }), 'Destinations'),
          ...errorResponses,
        },
      }),
      async (c) => c.json({ destinations: (await listDestinations(db, c.get('teamId'))).map(present) }, 200),
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/',
        summary: 'Add a bucket backups go to, after checking it works; gives the team its key if it had none',
        description:
          'Writes, reads back and deletes a small probe object under the prefix before saving. If the team ' +
          'has no key yet it is made now and its secret half is in teamKey, shown only in this response ' +
          '(as POST /team/key would); otherwise teamKey is null.',
        request: { body: jsonBody(createBody) },
        responses: {
          201: jsonResponse(
            z
              .object({ destination: destinationSchema, teamKey: newTeamKeySchema.nullable() })
              .openapi('CreatedDestination'),
            'Created',
          ),
          409: jsonResponse(errorSchema, 'The name is taken'),
          ...errorResponses,
          ...checkFailed,
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const input = c.req.valid('json');
        const fields = { ...input, endpoint: input.endpoint ?? null };
        await checkDestination(s3LocationOf(fields), fields.bucket, fields.prefix);
        const destination = await createDestination(db, vault, teamId, fields, new Date());
        let teamKey;
        try {
          teamKey = await createTeamKeyIfMissing(db, vault, teamId);
        } catch (err) {
          // Undone, so the same request can simply be sent again rather than meeting name_taken.
          await deleteDestination(db, teamId, destination.id);
          throw err;
        }
        // This answer may carry a secret key: no cache along the way may keep a copy.
        c.header('cache-control', 'no-store');
        return c.json(
          { destination: present(destination), teamKey: teamKey ? presentNewTeamKey(teamKey) : null },
          201,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        summary: 'One destination',
        request: { params: idParam('dst_...') },
        responses: { 200: jsonResponse(destinationSchema, 'Destination'), ...errorResponses },
      }),
      async (c) => c.json(present(await getDestination(db, c.get('teamId'), c.req.valid('param').id)), 200),
    )
    .openapi(
      createRoute({
        method: 'patch',
        path: '/{id}',
        summary: 'Rename a destination or change how it is reached; a changed connection is checked first',
        description: 'A change that fails the check is refused and the destination stays as it was.',
        request: { params: idParam('dst_...'), body: jsonBody(patchBody) },
        responses: {
          200: jsonResponse(destinationSchema, 'Updated'),
          409: jsonResponse(errorSchema, 'The name is taken'),
          ...errorResponses,
          ...checkFailed,
        },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const { id } = c.req.valid('param');
        const patch = c.req.valid('json');
        let checkedAt: Date | undefined;
        if (connectionFields.some((field) => patch[field] !== undefined)) {
          const current = await openDestination(db, vault, teamId, id);
          const next: DestinationConnection = {
            endpoint: patch.endpoint === undefined ? (current.location.endpoint ?? null) : patch.endpoint,
            region: patch.region ?? current.location.region,
            bucket: patch.bucket ?? current.bucket,
            prefix: patch.prefix ?? current.prefix,
            pathStyle: patch.pathStyle ?? current.location.forcePathStyle,
            accessKeyId: patch.accessKeyId ?? current.location.accessKeyId,
            secretAccessKey: patch.secretAccessKey ?? current.location.secretAccessKey,
          };
          await checkDestination(s3LocationOf(next), next.bucket, next.prefix);
          checkedAt = new Date();
        }
        return c.json(present(await updateDestination(db, vault, teamId, id, patch, checkedAt)), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        summary: 'Remove a destination no snapshot is kept in; its secret key leaves the vault',
        description: 'The bucket and its objects are not touched.',
        request: { params: idParam('dst_...') },
        responses: {
          204: { description: 'Deleted' },
          409: jsonResponse(errorSchema, 'Snapshots are kept in it (destination_in_use)'),
          ...errorResponses,
        },
      }),
      async (c) => {
        await deleteDestination(db, c.get('teamId'), c.req.valid('param').id);
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/{id}/check',
        summary: 'Check again that the destination works (write, read back, delete a probe object)',
        request: { params: idParam('dst_...') },
        responses: { 200: jsonResponse(destinationSchema, 'Works'), ...errorResponses, ...checkFailed },
      }),
      async (c) => {
        const teamId = c.get('teamId');
        const { id } = c.req.valid('param');
        const { bucket, prefix, location } = await openDestination(db, vault, teamId, id);
        await checkDestination(location, bucket, prefix);
        return c.json(present(await recordChecked(db, teamId, id, new Date())), 200);
      },
    );
}
