import { createRoute, z } from '@hono/zod-openapi';
import {
  accessKeyIdSchema,
  bucketSchema,
  endpointSchema,
  prefixSchema,
  regionSchema,
  secretAccessKeySchema,
} from '../common/destination-spec.ts';
import { caCertificateSchema, fingerprintSchema, receiverUrlSchema } from '../common/receiver-spec.ts';
import { nameSchema } from '../common/environment-spec.ts';
import type { Db } from '../db/database.ts';
import { deleteDestination, destinationsPage, getDestination } from '../db/destinations.data.ts';
import type { Vault } from '../db/vault.ts';
import { changeDestination, connectDestination, recheckDestination } from './destination-connect.ts';
import { pageBody, pageQuery, pageRequest, pageSchema } from './pages.ts';
import {
  bodyErrors,
  errorResponses,
  errorSchema,
  idParam,
  jsonBody,
  jsonResponse,
  locatedResponse,
  newRouter,
} from './router.ts';
import { destinationSchema, presentDestination } from './destinations.present.ts';
import { newTeamKeySchema, presentNewTeamKey } from './team.routes.ts';

const endpointField = endpointSchema.nullable().optional().openapi({
  description: 'The S3 API endpoint (http or https); omitted or null for AWS S3 itself',
  example: 'https://fsn1.your-objectstorage.com',
});
const secretField = secretAccessKeySchema.openapi({
  description: 'Write-only: sealed in the vault, never returned',
  format: 'password',
});

const bucketBody = z.strictObject({
  kind: z.literal('s3'),
  name: nameSchema,
  endpoint: endpointField,
  region: regionSchema.default('us-east-1'),
  bucket: bucketSchema,
  prefix: prefixSchema.default(''),
  pathStyle: z.boolean().default(true),
  accessKeyId: accessKeyIdSchema,
  secretAccessKey: secretField,
});

const receiverBody = z
  .strictObject({
    kind: z.literal('receiver'),
    name: nameSchema,
    url: receiverUrlSchema.openapi({ example: 'https://backup.example.com:8443' }),
    fingerprint: fingerprintSchema.optional().openapi({
      description: 'The SHA-256 fingerprint the receiver printed at start; pins its certificate',
      example: 'AB:CD:...:EF',
    }),
    caCertificate: caCertificateSchema.optional().openapi({
      description:
        'Instead of a fingerprint: a CA (PEM) that issued the receiver’s certificate for its host name',
    }),
    enrolmentCode: z
      .string()
      .regex(/^[A-Za-z0-9_-]{16,64}$/, 'must be the code the receiver printed at its first start')
      .openapi({ description: 'Printed once by the receiver; used once', format: 'password' }),
  })
  .refine((b) => (b.fingerprint === undefined) !== (b.caCertificate === undefined), {
    path: ['fingerprint'],
    message:
      'give either fingerprint or caCertificate (not both): it is how the receiver’s certificate is trusted',
  });

// A bucket is the kind when none is given: that is how destinations were created before receivers.
const createBody = z.preprocess(
  (body) =>
    body && typeof body === 'object' && !Array.isArray(body) && !('kind' in body)
      ? { ...body, kind: 's3' }
      : body,
  z.discriminatedUnion('kind', [bucketBody, receiverBody]),
);

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
        operationId: 'listDestinations',
        tags: ['Destinations'],
        summary: "List the team's backup destinations (never their secret keys), newest first",
        request: { query: pageQuery },
        responses: {
          200: jsonResponse(pageSchema('destinations', destinationSchema), 'Destinations'),
          ...errorResponses(422),
        },
      }),
      async (c) => {
        const query = c.req.valid('query');
        const page = await destinationsPage(db, c.get('teamId'), pageRequest(query));
        return c.json(pageBody(c, 'destinations', page, query.limit, presentDestination), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/',
        operationId: 'createDestination',
        tags: ['Destinations'],
        summary:
          'Add a bucket or a receiver backups go to, after checking it works; gives the team its key if it had none',
        description:
          'A bucket (kind s3, the default): writes, reads back and deletes a small probe object under the prefix ' +
          'before saving. A receiver (kind receiver): over a connection showing the pinned certificate (or one ' +
          'the given CA issued), enrols it with its one-time code, giving it a writer key and a prune token ' +
          'that strackt keeps in its vault, then writes, reads back and deletes a probe object. If the team ' +
          'has no key yet it is made now and its secret half is in teamKey, shown only in this response ' +
          '(as POST /team/key would); otherwise teamKey is null.',
        request: { body: jsonBody(createBody) },
        responses: {
          201: locatedResponse(
            z
              .object({ destination: destinationSchema, teamKey: newTeamKeySchema.nullable() })
              .openapi('CreatedDestination'),
            'Created',
          ),
          409: jsonResponse(errorSchema, 'The name is taken'),
          ...errorResponses(...bodyErrors),
          ...checkFailed,
        },
      }),
      async (c) => {
        const input = c.req.valid('json');
        const { destination, teamKey } = await connectDestination(
          { db, vault },
          c.get('teamId'),
          input.kind === 'receiver'
            ? {
                ...input,
                pin: input.caCertificate ? { ca: input.caCertificate } : { fingerprint: input.fingerprint! },
              }
            : { ...input, endpoint: input.endpoint ?? null },
        );
        // This answer may carry a secret key: no cache along the way may keep a copy.
        c.header('cache-control', 'no-store');
        c.header('location', `/destinations/${destination.id}`);
        return c.json(
          {
            destination: presentDestination(destination),
            teamKey: teamKey ? presentNewTeamKey(teamKey) : null,
          },
          201,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/{id}',
        operationId: 'getDestination',
        tags: ['Destinations'],
        summary: 'One destination',
        request: { params: idParam('dst_...') },
        responses: { 200: jsonResponse(destinationSchema, 'Destination'), ...errorResponses(404, 422) },
      }),
      async (c) =>
        c.json(presentDestination(await getDestination(db, c.get('teamId'), c.req.valid('param').id)), 200),
    )
    .openapi(
      createRoute({
        method: 'patch',
        path: '/{id}',
        operationId: 'updateDestination',
        tags: ['Destinations'],
        summary: 'Rename a destination or change how it is reached; a changed connection is checked first',
        description: 'A change that fails the check is refused and the destination stays as it was.',
        request: { params: idParam('dst_...'), body: jsonBody(patchBody) },
        responses: {
          200: jsonResponse(destinationSchema, 'Updated'),
          409: jsonResponse(errorSchema, 'The name is taken'),
          ...errorResponses(...bodyErrors, 404),
          ...checkFailed,
        },
      }),
      async (c) => {
        const saved = await changeDestination(
          { db, vault },
          c.get('teamId'),
          c.req.valid('param').id,
          c.req.valid('json'),
        );
        return c.json(presentDestination(saved), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'delete',
        path: '/{id}',
        operationId: 'deleteDestination',
        tags: ['Destinations'],
        summary: 'Remove a destination no snapshot is kept in; its secret key leaves the vault',
        description: 'The bucket and its objects are not touched.',
        request: { params: idParam('dst_...') },
        responses: {
          204: { description: 'Deleted' },
          409: jsonResponse(errorSchema, 'Snapshots are kept in it (destination_in_use)'),
          ...errorResponses(404, 422),
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
        operationId: 'checkDestination',
        tags: ['Destinations'],
        summary: 'Check again that the destination works (write, read back, delete a probe object)',
        request: { params: idParam('dst_...') },
        responses: { 200: jsonResponse(destinationSchema, 'Works'), ...errorResponses(404), ...checkFailed },
      }),
      async (c) => {
        const checked = await recheckDestination({ db, vault }, c.get('teamId'), c.req.valid('param').id);
        return c.json(presentDestination(checked), 200);
      },
    );
}
