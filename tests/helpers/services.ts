import { readdirSync } from 'node:fs';
import type { ServiceSpec } from '../../common/environment-spec.ts';

/** The newest PostgreSQL server binaries Debian installed on this machine. */
export function postgresBinDir(): string {
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((x, y) => Number(y) - Number(x));
  if (!versions[0])
    throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

/** A real PostgreSQL as an environment service: initdb into its volume on first start, then the server. */
export function postgresService(port: number, name = 'db'): ServiceSpec {
  const bin = postgresBinDir();
  return {
    name,
    user: 'postgres',
    command: [
      `[ -s "$STRACKT_VOLUME_PGDATA/PG_VERSION" ] || ${bin}/initdb -D "$STRACKT_VOLUME_PGDATA" -U postgres --auth=trust >/dev/null`,
      `exec ${bin}/postgres -D "$STRACKT_VOLUME_PGDATA" -p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
    ].join(' && '),
    env: {},
    volumes: ['pgdata'],
    healthCheck: { type: 'command', command: `pg_isready -q -h 127.0.0.1 -p ${port}` },
    healthTimeoutSeconds: 60,
    // SIGTERM is PostgreSQL's "smart" shutdown, which waits for clients to leave; SIGINT is "fast".
    stopSignal: 'SIGINT',
    stopTimeoutSeconds: 30,
  };
}

/**
 * The bank's second half: an HTTP service that appends every transfer id POSTed to it to a log in its
 * own volume. The bank's state then spans two services and two volumes, as an application's does.
 */
export function ledgerService(port: number, name = 'ledger'): ServiceSpec {
  const script = [
    `const fs = require('fs'), log = process.env.STRACKT_VOLUME_LEDGER + '/ledger.log';`,
    `require('http').createServer((q, s) => { let b = ''; q.on('data', (d) => (b += d));`,
    `q.on('end', () => { if (b) fs.appendFileSync(log, b + '\\n'); s.end('ok'); }); }).listen(${port}, '127.0.0.1')`,
  ].join(' ');
  return {
    name,
    command: `exec node -e "${script}"`,
    env: {},
    volumes: ['ledger'],
    healthCheck: { type: 'http', port, path: '/' },
    healthTimeoutSeconds: 30,
    stopSignal: 'SIGTERM',
    stopTimeoutSeconds: 10,
  };
}

/** A small HTTP service that reports its environment's variable names and writes its pid into its volume. */
export function httpService(port: number, name = 'web'): ServiceSpec {
  const script = `require('http').createServer((q, s) => s.end(JSON.stringify(Object.keys(process.env)))).listen(${port}, '127.0.0.1')`;
  return {
    name,
    command: `echo $$ > "$STRACKT_VOLUME_WEBDATA/pid" && exec node -e "${script}"`,
    env: { GREETING: 'hello' },
    volumes: ['webdata'],
    healthCheck: { type: 'http', port, path: '/' },
    healthTimeoutSeconds: 30,
    stopSignal: 'SIGTERM',
    stopTimeoutSeconds: 10,
  };
}
