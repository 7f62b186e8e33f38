import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import postgres from 'postgres';
import { freePort, repoRoot, stack } from '../helpers/stack.ts';

/** The fallback `start` and `test` take on a machine with no PostgreSQL answering on 127.0.0.1:5432. */
it('starts a private PostgreSQL cluster with the machine binaries when asked to, and stops it', async () => {
  const dir = await mkdtemp(join(stack.runDir, 'pg-'));
  await chmod(dir, 0o755); // PostgreSQL runs as its own user and must reach its data folder
  const port = await freePort();
  const script = `
    set -euo pipefail
    source deploy/lib.sh
    LOG_DIR=${dir}
    ensure_postgres ${dir}
    echo "URL=$PG_BASE_URL"
    node -e 'require("postgres")(process.argv[1] + "/postgres", {max: 1})\`select 1 as ok\`.then(r => { console.log("ROWS=" + JSON.stringify(r)); process.exit(0) })' "$PG_BASE_URL"
    stop_all
  `;
  const run = spawnSync('bash', ['-c', script], {
    cwd: repoRoot,
    env: { ...process.env, STRACKT_PRIVATE_PG: '1', STRACKT_PRIVATE_PG_PORT: String(port) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, new RegExp(`URL=postgres://postgres@127.0.0.1:${port}`));
  assert.match(run.stdout, /ROWS=\[\{"ok":1\}\]/);
  // Stopped: nothing answers on its port any more.
  const sql = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, connect_timeout: 2 });
  await assert.rejects(sql`select 1`, /ECONNREFUSED/);
  await sql.end();
});
