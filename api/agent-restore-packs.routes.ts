import { createRoute, z } from '@hono/zod-openapi';
import { notFound } from '../common/errors.ts';
import { mapInParallel } from '../common/in-parallel.ts';
import { chunkPlacesPerAsk, packAccessPerAsk } from '../common/pack-upload-limits.ts';
import type { Db } from '../db/database.ts';
import { snapshotChunkPlaces, snapshotPacks } from '../db/restore-chunks.data.ts';
import { activeRestoreForServer } from '../db/restores.data.ts';
import { activeVerificationForServer } from '../db/verifications.data.ts';
import { getSnapshotById } from '../db/snapshots.data.ts';
import { getTeamPublicKey, openTeamSecretKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { sealDataKey } from '../format/data-key.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { openPackDataKey } from '../storage/pack-data-key.ts';
import { storageUnreachable } from '../storage/probe-errors.ts';
import { pinSchema } from './agent.routes.ts';
import type { AgentEnv } from './auth.ts';
import {
  bodyErrors,
  errorResponses,
  errorSchema,
  holdsSecret,
  idParam,
  idString,
  jsonBody,
  jsonResponse,
  newRouter,
} from './router.ts';
import { chunkIdHex } from './agent-packs.routes.ts';

/** Pack preambles read from the storage at once for one access ask. */
const accessReadsAtOnce = 8;

/** The operations that read a format-2 snapshot's packs: their path, and names in the OpenAPI document. */
const readers = {
  restores: {
    what: 'restore',
    verb: 'restoring',
    locate: 'locateRestoreChunks',
    access: 'getRestorePackAccess',
  },
  verifications: {
    what: 'verification',
    verb: 'verifying',
    locate: 'locateVerificationChunks',
    access: 'getVerificationPackAccess',
  },
} as const;

/**
 * The snapshot the calling server's running restore or verification reads, else not found. The key
 * is dropped when the operation closes: from then on, nothing more is handed out for it.
 */
export async function snapshotRead(
  db: Db,
  kind: 'restores' | 'verifications',
  serverId: string,
  operationId: string,
) {
  const running =
    kind === 'restores'
      ? await activeRestoreForServer(db, serverId, operationId)
      : await activeVerificationForServer(db, serverId, operationId);
  if (!running?.sealed_data_key) throw notFound(readers[kind].what, operationId);
  return getSnapshotById(db, running.snapshot_id);
}

/**
 * The agent's side of reading a format-2 snapshot's packs, to restore or to verify it
 * (docs/ARCHITECTURE.md, "Chunk index (format 2)"): where its chunks lie, and for each pack holding
 * them a URL and the pack's data key sealed to the agent. Only for the restore or verification the
 * calling server runs now, and only that snapshot's chunks and packs: anything else is not found,
 * whoever asks.
 */
export function agentRestorePacksRoutes(
  { db, vault, storeOf }: { db: Db; vault: Vault; storeOf: StoreOf },
  kind: keyof typeof readers,
) {
  const names = readers[kind];
  const runningRead = (serverId: string, operationId: string) =>
    snapshotRead(db, kind, serverId, operationId);

  return newRouter<AgentEnv>()
    .openapi(
      createRoute({
        method: 'post',
        path: `/${kind}/{id}/chunks/locate`,
        operationId: names.locate,
        tags: ['Agent'],
        summary: `Where chunks of the snapshot this server is ${names.verb} lie: pack, offset and lengths`,
        request: {
          params: idParam('op_...'),
          body: jsonBody(z.strictObject({ ids: z.array(chunkIdHex).min(1).max(chunkPlacesPerAsk) })),
        },
        responses: {
          200: jsonResponse(
            z.object({
              locations: z
                .array(
                  z.object({
                    chunkId: z.string(),
                    packId: z.string(),
                    offset: z.number(),
                    length: z.number(),
                    rawLength: z.number(),
                  }),
                )
                .openapi({
                  description: 'One good copy per chunk; chunks the snapshot does not hold are absent',
                }),
            }),
            'Locations',
          ),
          ...errorResponses(...bodyErrors, 404),
        },
      }),
      async (c) => {
        const snapshot = await runningRead(c.get('server').id, c.req.valid('param').id);
        const ids = c.req.valid('json').ids.map((id) => Buffer.from(id, 'hex'));
        const places = await snapshotChunkPlaces(db, snapshot, ids);
        return c.json({ locations: places.map((p) => ({ ...p, chunkId: p.chunkId.toString('hex') })) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: `/${kind}/{id}/packs/access`,
        operationId: names.access,
        tags: ['Agent'],
        summary: `For packs holding chunks of the snapshot this server is ${names.verb}: a URL to read each, and its data key sealed to this agent`,
        request: {
          params: idParam('op_...'),
          body: jsonBody(z.strictObject({ packIds: z.array(idString).min(1).max(packAccessPerAsk) })),
        },
        responses: {
          200: jsonResponse(
            z.object({
              packs: z.array(z.object({ packId: z.string(), url: z.string(), sealedDataKey: z.string() })),
              pin: pinSchema,
            }),
            'Pack access (never cached)',
          ),
          409: jsonResponse(
            errorSchema,
            'A pack is gone or its preamble is not the team’s (pack_unreadable)',
          ),
          ...errorResponses(...bodyErrors, 404, 503),
        },
      }),
      async (c) => {
        const server = c.get('server');
        const snapshot = await runningRead(server.id, c.req.valid('param').id);
        const asked = [...new Set(c.req.valid('json').packIds)];
        const packs = await snapshotPacks(db, snapshot, asked);
        const missing = asked.find((id) => !packs.some((p) => p.id === id));
        if (missing) throw notFound('pack', missing);
        const team = await getTeamPublicKey(db, snapshot.team_id);
        if (!team || !server.agent_public_key) throw notFound(names.what, c.req.valid('param').id);
        const agentKey = Buffer.from(server.agent_public_key, 'hex');
        const store = await storeOf(snapshot.team_id, snapshot.destination_id);
        const secretKey = await openTeamSecretKey(db, vault, snapshot.team_id);
        try {
          // Several preambles read at once: one after another, a batch of 64 packs held the restore's
          // first fetch for the sum of 64 round trips to the storage.
          const out = await mapInParallel(packs, accessReadsAtOnce, async (pack) => {
            const dataKey = await openPackDataKey(store, pack, { ...team, secretKey }).catch(
              (err: unknown) => {
                throw storageUnreachable(err) ?? err;
              },
            );
            const sealed = sealDataKey(dataKey, agentKey).toString('hex');
            dataKey.fill(0);
            return { packId: pack.id, url: await store.getUrl(pack.object_key), sealedDataKey: sealed };
          });
          holdsSecret(c);
          return c.json({ packs: out, pin: store.pin }, 200);
        } finally {
          // Once every read has ended: mapInParallel waits for those still running when one failed.
          secretKey.fill(0);
        }
      },
    );
}
