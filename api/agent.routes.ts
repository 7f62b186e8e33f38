import { createRoute, z } from '@hono/zod-openapi';
import { environmentSpecSchema, type EnvironmentSpec } from '../common/environment-spec.ts';
import { DomainError, notFound } from '../common/errors.ts';
import { maxManifestBytes } from '../format/manifest.ts';
import type { Db } from '../db/database.ts';
import { activeRestoreForServer } from '../db/restores.data.ts';
import { snapshotBlobBytes } from '../db/restore-chunks.data.ts';
import { getSnapshotById, uploadingSnapshotForServer } from '../db/snapshots.data.ts';
import { activeVerificationForServer } from '../db/verifications.data.ts';
import { storageUnreachable } from '../storage/probe-errors.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { environmentForServer } from '../db/environments.data.ts';
import { enrolAgentKey } from '../db/servers.data.ts';
import { teamDedupKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import type { AgentEnv } from './auth.ts';
import {
  bodyErrors,
  errorResponses,
  errorSchema,
  holdsSecret,
  idParam,
  jsonBody,
  jsonResponse,
  newRouter,
} from './router.ts';

// How an agent trusts a receiver's certificate; absent for a bucket.
export const pinSchema = z
  .union([z.object({ fingerprint: z.string() }), z.object({ ca: z.string() })])
  .optional()
  .openapi({ description: 'Set when the storage is a receiver: the agent talks to no other certificate' });

const accessSchema = z.object({
  snapshotId: z.string(),
  formatVersion: z
    .union([z.literal(1), z.literal(2)])
    .openapi({ description: 'docs/FORMAT.md: 2 is a manifest of chunks in packs, read by range' }),
  dataUrl: z
    .string()
    .optional()
    .openapi({ description: 'The data object; absent in format 2, which has none' }),
  manifestUrl: z.string(),
  pin: pinSchema,
  sizeBytes: z.number(),
  bytesExpected: z.number().openapi({
    description: 'What fetching the snapshot downloads, for progress: the blobs of its chunks in format 2',
  }),
  keyId: z.string(),
  sealedDataKey: z
    .string()
    .openapi({ description: 'The data key of the data object (format 1) or of the manifest (2)' }),
});

/** Routes agents call with their agent token. They only ever see their own server's environments and uploads. */
export function agentRoutes({ db, vault, storeOf }: { db: Db; vault: Vault; storeOf: StoreOf }) {
  /** For an agent: the storage of a snapshot its own server is writing right now, else not found. */
  async function uploadStore(serverId: string, snapshotId: string, { multipart = true } = {}) {
    const snapshot = await uploadingSnapshotForServer(db, serverId, snapshotId);
    // A format-2 backup has no data object, hence no multipart upload: only its manifest.
    if (!snapshot || (multipart && !snapshot.upload_id)) throw notFound('snapshot upload', snapshotId);
    return { snapshot, store: await storeOf(snapshot.team_id, snapshot.destination_id) };
  }

  /** URLs for a snapshot's two objects, and its data key as sealed to the agent reading it. */
  async function snapshotAccess(snapshotId: string, sealedDataKey: string) {
    const snapshot = await getSnapshotById(db, snapshotId);
    const store = await storeOf(snapshot.team_id, snapshot.destination_id);
    const v2 = snapshot.format_version === 2;
    return {
      snapshotId: snapshot.id,
      formatVersion: snapshot.format_version,
      dataUrl: v2 ? undefined : await store.getUrl(snapshot.data_key),
      manifestUrl: await store.getUrl(snapshot.manifest_key),
      pin: store.pin,
      sizeBytes: Number(snapshot.size_bytes),
      bytesExpected: v2 ? await snapshotBlobBytes(db, snapshot) : Number(snapshot.size_bytes),
      keyId: snapshot.key_id,
      sealedDataKey,
    };
  }

  return newRouter<AgentEnv>()
    .openapi(
      createRoute({
        method: 'post',
        path: '/hello',
        operationId: 'agentHello',
        tags: ['Agent'],
        summary: 'Agent enrolment: who am I; pins the agent’s key at the first call',
        request: {
          body: jsonBody(
            z.strictObject({
              publicKey: z
                .string()
                .regex(/^[0-9a-f]{64}$/, 'must be the agent’s X25519 public key in hex')
                .openapi({ description: 'Restores re-seal data keys to it' }),
            }),
          ),
        },
        responses: {
          200: jsonResponse(
            z.object({
              serverId: z.string(),
              teamId: z.string(),
              serverName: z.string(),
            }),
            'Identity',
          ),
          409: jsonResponse(
            errorSchema,
            'Another agent key is enrolled for this server (agent_key_mismatch)',
          ),
          ...errorResponses(...bodyErrors),
        },
      }),
      async (c) => {
        const server = c.get('server');
        if (!(await enrolAgentKey(db, server.id, c.req.valid('json').publicKey)))
          throw new DomainError(
            'conflict',
            'agent_key_mismatch',
            `server ${server.id} enrolled another agent key; to move the agent, rotate its token (POST /servers/${server.id}/agent-token)`,
          );
        return c.json({ serverId: server.id, teamId: server.team_id, serverName: server.name }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/dedup-key',
        operationId: 'getDedupKey',
        tags: ['Agent'],
        summary: 'The dedup key of this server’s team, which names chunks in format 2 (docs/FORMAT.md)',
        responses: {
          200: jsonResponse(
            z.object({ dedupKey: z.string().openapi({ description: '32 bytes, hex' }) }),
            'Dedup key (never cached)',
          ),
          ...errorResponses(404),
        },
      }),
      async (c) => {
        // Any agent of the team may have it: it names chunks and opens nothing (docs/SECURITY.md).
        const key = await teamDedupKey(db, vault, c.get('server').team_id);
        holdsSecret(c);
        return c.json({ dedupKey: key.toString('hex') }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/snapshots/{id}/part-urls',
        operationId: 'createPartUrls',
        tags: ['Agent'],
        summary: 'URLs for parts of the data object of a snapshot this server is writing',
        request: {
          params: idParam('snap_...'),
          body: jsonBody(
            z.strictObject({ partNumbers: z.array(z.number().int().min(1).max(10_000)).min(1).max(64) }),
          ),
        },
        responses: {
          200: jsonResponse(
            z.object({
              urls: z.array(z.object({ partNumber: z.number(), url: z.string() })),
              pin: pinSchema,
            }),
            'URLs',
          ),
          ...errorResponses(...bodyErrors, 404),
        },
      }),
      async (c) => {
        const { snapshot, store } = await uploadStore(c.get('server').id, c.req.valid('param').id);
        const urls = await store.partUrls(
          snapshot.data_key,
          snapshot.upload_id!,
          c.req.valid('json').partNumbers,
        );
        return c.json({ urls, pin: store.pin }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/snapshots/{id}/parts',
        operationId: 'listUploadedParts',
        tags: ['Agent'],
        summary: 'The parts the storage holds of a snapshot this server is writing, for a resumed upload',
        request: { params: idParam('snap_...') },
        responses: {
          200: jsonResponse(
            z.object({
              parts: z.array(z.object({ partNumber: z.number(), etag: z.string(), size: z.number() })),
            }),
            'Parts',
          ),
          ...errorResponses(404, 422, 503),
        },
      }),
      async (c) => {
        const { snapshot, store } = await uploadStore(c.get('server').id, c.req.valid('param').id);
        const parts = await store
          .uploadedParts(snapshot.data_key, snapshot.upload_id!)
          .catch((err: unknown) => {
            throw storageUnreachable(err) ?? err;
          });
        return c.json({ parts }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/snapshots/{id}/manifest-url',
        operationId: 'createManifestUrl',
        tags: ['Agent'],
        summary: 'A URL for the manifest object of a snapshot this server is writing',
        request: { params: idParam('snap_...') },
        responses: {
          200: jsonResponse(z.object({ url: z.string(), pin: pinSchema }), 'URL'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const { snapshot, store } = await uploadStore(c.get('server').id, c.req.valid('param').id, {
          multipart: false,
        });
        return c.json(
          { url: await store.putUrl(snapshot.manifest_key, maxManifestBytes), pin: store.pin },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/restores/{id}',
        operationId: 'getActiveRestore',
        tags: ['Agent'],
        summary: 'Whether this server has that restore running: asked before every destructive step',
        request: { params: idParam('op_...') },
        responses: {
          200: jsonResponse(z.object({ operationId: z.string(), environmentId: z.string() }), 'Restore'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        const restore = await activeRestoreForServer(db, c.get('server').id, id);
        if (!restore) throw notFound('restore', id);
        return c.json({ operationId: restore.operation_id, environmentId: restore.environment_id }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/restores/{id}/access',
        operationId: 'getRestoreAccess',
        tags: ['Agent'],
        summary:
          'What this server needs to fetch the snapshot it is restoring: URLs and the data key sealed to it',
        request: { params: idParam('op_...') },
        responses: {
          200: jsonResponse(accessSchema, 'Access'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        const restore = await activeRestoreForServer(db, c.get('server').id, id);
        if (!restore?.sealed_data_key) throw notFound('restore', id);
        return c.json(await snapshotAccess(restore.snapshot_id, restore.sealed_data_key), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/verifications/{id}/access',
        operationId: 'getVerificationAccess',
        tags: ['Agent'],
        summary:
          'What this server needs to stream and check a snapshot it verifies: URLs and the data key sealed to it',
        request: { params: idParam('op_...') },
        responses: { 200: jsonResponse(accessSchema, 'Access'), ...errorResponses(404, 422) },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        const verification = await activeVerificationForServer(db, c.get('server').id, id);
        if (!verification?.sealed_data_key) throw notFound('verification', id);
        return c.json(await snapshotAccess(verification.snapshot_id, verification.sealed_data_key), 200);
      },
    )
    .openapi(
      createRoute({
        method: 'get',
        path: '/environments/{id}',
        operationId: 'getEnvironmentSpec',
        tags: ['Agent'],
        summary: 'The spec of an environment placed on the calling agent’s server, or being restored onto it',
        request: { params: idParam('env_...') },
        responses: {
          200: jsonResponse(environmentSpecSchema, 'Environment spec'),
          ...errorResponses(404, 422),
        },
      }),
      async (c) => {
        const server = c.get('server');
        const { id } = c.req.valid('param');
        const env = await environmentForServer(db, server.id, id);
        if (!env) throw notFound('environment', id);
        const spec: EnvironmentSpec = {
          environmentId: env.id,
          teamId: env.team_id,
          name: env.name,
          services: env.services,
          backupStrategy: env.backup_strategy,
        };
        return c.json(spec, 200);
      },
    );
}
