import { exitOnConfigError, loadConfig } from '../common/config.ts';
import { controlPlaneConfig } from '../common/control-plane-config.ts';
import { describeDatabaseUrl, ensureDatabase } from './connection-check.ts';
import { createDb } from './database.ts';
import { migrateToLatest } from './migrator.ts';

const { DATABASE_URL } = exitOnConfigError('strackt-migrate', () =>
  loadConfig({ DATABASE_URL: controlPlaneConfig.DATABASE_URL }),
);
try {
  await ensureDatabase(DATABASE_URL);
  const db = createDb(DATABASE_URL, { max: 1 });
  const applied = await migrateToLatest(db);
  await db.destroy();
  console.error(
    `migrated ${describeDatabaseUrl(DATABASE_URL)}: ${applied.length ? applied.join(', ') : 'already up to date'}`,
  );
} catch (err) {
  console.error(`strackt-migrate: ${(err as Error).message}`);
  process.exit(1);
}
