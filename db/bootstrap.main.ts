import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { exitOnConfigError, loadConfig } from '../common/config.ts';
import { controlPlaneConfig } from '../common/control-plane-config.ts';
import { createDb } from './database.ts';
import { createServer, rotateAgentToken } from './servers.data.ts';
import { createApiToken, createTeam } from './teams.data.ts';

/**
 * First run of `start` on one machine: a team, an admin token and a local server with its agent token.
 * Tokens are stored hashed, so their only clear copies are these 0600 files in the data folder; a lost
 * file is replaced by a new token rather than recovered.
 */
const config = exitOnConfigError('strackt-bootstrap', () =>
  loadConfig({ DATABASE_URL: controlPlaneConfig.DATABASE_URL, STRACKT_DATA_DIR: z.string().min(1) }),
);
const adminFile = join(config.STRACKT_DATA_DIR, 'admin.token');
const agentFile = join(config.STRACKT_DATA_DIR, 'local-agent.token');
const db = createDb(config.DATABASE_URL, { max: 1 });
const secret = (path: string, value: string) => writeFile(path, `${value}\n`, { mode: 0o600 });

let team = await db.selectFrom('teams').selectAll().where('name', '=', 'default').executeTakeFirst();
if (!team) {
  const created = await createTeam(db, 'default');
  team = created.team;
  await secret(adminFile, created.token);
} else if (!existsSync(adminFile)) {
  await secret(adminFile, (await createApiToken(db, team.id, 'bootstrap')).token);
}

const server = await db
  .selectFrom('servers')
  .selectAll()
  .where('team_id', '=', team.id)
  .where('name', '=', 'local')
  .executeTakeFirst();
if (!server) {
  await secret(agentFile, (await createServer(db, team.id, 'local')).agentToken);
} else if (!existsSync(agentFile)) {
  await secret(agentFile, await rotateAgentToken(db, server.id));
}
await db.destroy();
