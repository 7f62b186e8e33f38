import { createRoute, z } from '@hono/zod-openapi';
import { notFound } from '../common/errors.ts';
import { damageReportCopies } from '../common/pack-upload-limits.ts';
import type { Db } from '../db/database.ts';
import { getTeamPublicKey, openTeamSecretKey, teamDedupKey } from '../db/team-keys.data.ts';
import type { Vault } from '../db/vault.ts';
import { markCopiesBad, snapshotCopies } from '../db/verify-chunks.data.ts';
import { damagedCopies } from '../storage/damaged-copies.ts';
import type { StoreOf } from '../storage/destination-store.ts';
import { storageUnreachable } from '../storage/probe-errors.ts';
import { chunkIdHex } from './agent-packs.routes.ts';
import { snapshotRead } from './agent-restore-packs.routes.ts';
import type { AgentEnv } from './auth.ts';
import {
  bodyErrors,
  errorResponses,
  idParam,
  idString,
  jsonBody,
  jsonResponse,
  newRouter,
} from './router.ts';

/** The operations that read a format-2 snapshot's packs and may find them damaged. */
const readers = {
  restores: { verb: 'restoring', operationId: 'reportRestoreDamage' },
  verifications: { verb: 'verifying', operationId: 'reportVerificationDamage' },
} as const;

/**
 * What a verification or a restore of a format-2 snapshot found damaged (docs/ARCHITECTURE.md, "Chunk
 * index (format 2)"): copies the next backup must upload anew. Only the server running that operation
 * may report, only copies of that snapshot's chunks count, and each is read again by the control
 * plane before it is marked bad: a lying agent cannot make a good copy unusable.
 */
export function agentDamageRoutes(
  { db, vault, storeOf }: { db: Db; vault: Vault; storeOf: StoreOf },
  kind: keyof typeof readers,
) {
  const names = readers[kind];
  return newRouter<AgentEnv>().openapi(
    createRoute({
      method: 'post',
      path: `/${kind}/{id}/damage`,
      operationId: names.operationId,
      tags: ['Agent'],
      summary: `Copies of chunks the format-2 snapshot this server is ${names.verb} found missing or corrupt`,
      request: {
        params: idParam('op_...'),
        body: jsonBody(
          z.strictObject({
            copies: z
              .array(z.strictObject({ chunkId: chunkIdHex, packId: idString }))
              .min(1)
              .max(damageReportCopies),
          }),
        ),
      },
      responses: {
        200: jsonResponse(
          z.object({ marked: z.number().openapi({ description: 'Copies found damaged and marked bad' }) }),
          'Marked',
        ),
        ...errorResponses(...bodyErrors, 404, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const snapshot = await snapshotRead(db, kind, c.get('server').id, id);
      const reported = c.req.valid('json').copies.map((k) => ({
        chunkId: Buffer.from(k.chunkId, 'hex'),
        packId: k.packId,
      }));
      const copies = await snapshotCopies(db, snapshot, reported);
      if (copies.length === 0) return c.json({ marked: 0 }, 200);
      const team = await getTeamPublicKey(db, snapshot.team_id);
      if (!team) throw notFound(kind === 'restores' ? 'restore' : 'verification', id);
      const store = await storeOf(snapshot.team_id, snapshot.destination_id);
      const secretKey = await openTeamSecretKey(db, vault, snapshot.team_id);
      const dedupKey = await teamDedupKey(db, vault, snapshot.team_id);
      try {
        const damaged = await damagedCopies(store, { ...team, secretKey }, dedupKey, copies).catch(
          (err: unknown) => {
            throw storageUnreachable(err) ?? err;
          },
        );
        return c.json({ marked: await markCopiesBad(db, damaged) }, 200);
      } finally {
        secretKey.fill(0);
        dedupKey.fill(0);
      }
    },
  );
}
