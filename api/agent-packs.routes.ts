import { createRoute, z } from '@hono/zod-openapi';
import { DomainError, invalid, notFound } from '../common/errors.ts';
import { chunkIdsPerAsk, maxPackBlobs, maxPacksInFlight } from '../common/pack-upload-limits.ts';
import {
  chunksToUpload,
  packOfSnapshot,
  packStored,
  recordSnapshotChunks,
  startPack,
  unrecordedPackCount,
} from '../db/chunk-index.data.ts';
import type { Db } from '../db/database.ts';
import { uploadingSnapshotForServer } from '../db/snapshots.data.ts';
import { openTeamSecretKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { newPackId, packObjectKey, preambleBytes, trailerBytes } from '../format/v2/pack-layout.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { storageUnreachable } from '../storage/probe-errors.ts';
import { checkStoredPack, maxPackBytes } from '../storage/stored-pack-check.ts';
import { pinSchema } from './agent.routes.ts';
import type { AgentEnv } from './auth.ts';
import {
  bodyErrors,
  errorResponses,
  errorSchema,
  idParam,
  idString,
  jsonBody,
  jsonResponse,
  newRouter,
} from './router.ts';

export const chunkIdHex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a chunk id: 64 lowercase hex digits');
const uint32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);

const packParams = z.object({
  id: idString.openapi({ param: { name: 'id', in: 'path' }, example: 'snap_...' }),
  packId: idString.openapi({ param: { name: 'packId', in: 'path' }, example: 'pack_...' }),
});

/**
 * The agent's side of a format-2 backup (docs/ARCHITECTURE.md, "Chunk index (format 2)"): which chunks
 * to upload, a URL for each new pack, and the report of a pack stored, which the control plane checks
 * against the object before its chunks count. Only for a snapshot the calling server is writing.
 */
export function agentPacksRoutes({ db, vault, storeOf }: { db: Db; vault: Vault; storeOf: StoreOf }) {
  async function ownUpload(serverId: string, snapshotId: string) {
    const snapshot = await uploadingSnapshotForServer(db, serverId, snapshotId);
    if (!snapshot) throw notFound('snapshot upload', snapshotId);
    return snapshot;
  }

  return newRouter<AgentEnv>()
    .openapi(
      createRoute({
        method: 'post',
        path: '/snapshots/{id}/chunks/needed',
        operationId: 'askChunksNeeded',
        tags: ['Agent'],
        summary:
          'Of these chunks of a snapshot this server is writing, those its destination lacks; the others are kept for it',
        request: {
          params: idParam('snap_...'),
          body: jsonBody(z.strictObject({ ids: z.array(chunkIdHex).min(1).max(chunkIdsPerAsk) })),
        },
        responses: {
          200: jsonResponse(
            z.object({
              needed: z.array(z.string()).openapi({ description: 'Chunk ids to upload, once each' }),
            }),
            'Chunks to upload',
          ),
          ...errorResponses(...bodyErrors, 404),
        },
      }),
      async (c) => {
        const ids = c.req.valid('json').ids.map((id) => Buffer.from(id, 'hex'));
        const needed = await chunksToUpload(db, c.req.valid('param').id, ids, c.get('server').id);
        return c.json({ needed: needed.map((id) => id.toString('hex')) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/snapshots/{id}/packs',
        operationId: 'startPack',
        tags: ['Agent'],
        summary: 'A new pack for a snapshot this server is writing: its id and a URL to PUT it, once',
        request: { params: idParam('snap_...') },
        responses: {
          200: jsonResponse(
            z.object({ packId: z.string(), url: z.string(), pin: pinSchema }),
            'Pack registered',
          ),
          ...errorResponses(404, 422, 429),
        },
      }),
      async (c) => {
        const snapshot = await ownUpload(c.get('server').id, c.req.valid('param').id);
        // Counted, not locked: two racing calls may pass together, which the bound allows for.
        if ((await unrecordedPackCount(db, snapshot.id)) >= maxPacksInFlight)
          throw new DomainError(
            'too_many',
            'too_many_packs',
            `this backup has ${maxPacksInFlight} packs not reported stored: report them before starting more`,
          );
        const store = await storeOf(snapshot.team_id, snapshot.destination_id);
        // Minted here, never by the agent: it can then only write a new object, not overwrite a pack.
        const objectKey = packObjectKey(store.prefix, snapshot.team_id, newPackId());
        const pack = await startPack(db, { snapshotId: snapshot.id, objectKey });
        return c.json(
          { packId: pack.id, url: await store.putUrl(objectKey, maxPackBytes), pin: store.pin },
          200,
        );
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/snapshots/{id}/packs/{packId}/stored',
        operationId: 'reportPackStored',
        tags: ['Agent'],
        summary:
          'Reports a pack of this server’s snapshot uploaded; recorded once its object and sealed index match the report',
        request: {
          params: packParams,
          body: jsonBody(
            z.strictObject({
              sizeBytes: z
                .number()
                .int()
                .min(preambleBytes + trailerBytes)
                .max(maxPackBytes),
              entries: z
                .array(
                  z.strictObject({
                    chunkId: chunkIdHex,
                    offset: uint32,
                    length: uint32,
                    rawLength: uint32,
                  }),
                )
                .min(1)
                .max(maxPackBlobs)
                .openapi({ description: 'The pack’s index, in order, as the pack writer answered it' }),
            }),
          ),
        },
        responses: {
          204: { description: 'Recorded (again: nothing changes)' },
          409: jsonResponse(errorSchema, 'The pack was given up and is being deleted (pack_deleting)'),
          ...errorResponses(...bodyErrors, 404, 503),
        },
      }),
      async (c) => {
        const { id, packId } = c.req.valid('param');
        const snapshot = await ownUpload(c.get('server').id, id);
        const pack = await packOfSnapshot(db, snapshot.id, packId);
        if (!pack) throw notFound('pack', packId);
        if (pack.status === 'stored') return c.body(null, 204);
        const { sizeBytes, entries } = c.req.valid('json');
        const seen = new Set<string>();
        entries.forEach((e, k) => {
          if (seen.has(e.chunkId)) throw invalid(`entries.${k}.chunkId`, 'a chunk is stored once in a pack');
          seen.add(e.chunkId);
        });
        const index = entries.map((e) => ({
          id: Buffer.from(e.chunkId, 'hex'),
          offset: e.offset,
          length: e.length,
          rawLength: e.rawLength,
        }));
        const store = await storeOf(snapshot.team_id, snapshot.destination_id);
        const secretKey = await openTeamSecretKey(db, vault, snapshot.team_id);
        try {
          await checkStoredPack(store, pack.object_key, { sizeBytes, entries: index }, secretKey);
        } catch (err) {
          throw storageUnreachable(err) ?? err;
        } finally {
          secretKey.fill(0);
        }
        // Not verified: the control plane read the index, not the blobs (docs/SECURITY.md, poisoning).
        await packStored(db, pack.id, {
          sizeBytes,
          entries: index.map(({ id, ...place }) => ({ chunkId: id, ...place })),
          verified: false,
        });
        return c.body(null, 204);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/snapshots/{id}/chunks/referenced',
        operationId: 'reportChunksReferenced',
        tags: ['Agent'],
        summary:
          'Chunks the manifest of a snapshot this server is writing references, in batches, before it is complete',
        request: {
          params: idParam('snap_...'),
          body: jsonBody(z.strictObject({ ids: z.array(chunkIdHex).min(1).max(chunkIdsPerAsk) })),
        },
        responses: {
          204: { description: 'Recorded: garbage collection keeps them while the snapshot is kept' },
          ...errorResponses(...bodyErrors, 404, 422),
        },
      }),
      async (c) => {
        const ids = c.req.valid('json').ids.map((id) => Buffer.from(id, 'hex'));
        await recordSnapshotChunks(db, c.req.valid('param').id, ids, c.get('server').id);
        return c.body(null, 204);
      },
    );
}
