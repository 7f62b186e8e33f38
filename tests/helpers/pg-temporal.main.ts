// deploy/lib.sh runs this when STRACKT_TEST_TEMPORAL=postgres: the whole suite then runs against
// Temporal on PostgreSQL, the server started by the same helper the cluster test uses.
// Usage: node --import tsx tests/helpers/pg-temporal.main.ts DIR [KEY=JSON...]
// Writes DIR/address once the namespace takes workflows; on SIGTERM stops the server and drops its databases.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pgTemporalOptionsFromEnv, startPgTemporal } from './pg-temporal.ts';

const [dir, ...values] = process.argv.slice(2);
if (!dir) throw new Error('usage: pg-temporal.main.ts DIR [KEY=JSON...]');
const dynamicConfig = Object.fromEntries(
  values.map((v) => [v.slice(0, v.indexOf('=')), JSON.parse(v.slice(v.indexOf('=') + 1)) as unknown]),
);
const temporal = await startPgTemporal({ ...pgTemporalOptionsFromEnv(dir), dynamicConfig });
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // The process exits once the server is down and its databases are gone: stop_all waits for that.
  void temporal.stop().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
await writeFile(join(dir, 'address'), temporal.address);
console.log(
  `Temporal on PostgreSQL at ${temporal.address} (pid ${temporal.pid}, databases ${Object.values(temporal.databases).join(', ')})`,
);
