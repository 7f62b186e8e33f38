import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePorts, freePortsBelow32768 } from './free-ports.ts';
import { waitFor } from './wait-for.ts';

export interface PgTemporalOptions {
  /** postgres://user[:password]@host[:port], no database: where the two databases are made. */
  pgBaseUrl: string;
  /** Where the configuration and the server's log go. */
  dir: string;
  serverBin: string;
  sqlToolBin: string;
  /** The `temporal` CLI, which registers the namespace and search attributes as an operator would. */
  cliBin: string;
  /** Dynamic configuration over the defaults below, as `start-dev --dynamic-config-value` takes it. */
  dynamicConfig?: Record<string, unknown>;
}

export interface PgTemporal {
  address: string;
  /** The server process: a test reads its RSS, or kills it. */
  pid: number;
  databases: { history: string; visibility: string };
  log: () => Promise<string>;
  /** Stops the server and drops its two databases. */
  stop: () => Promise<void>;
}

/** The options from the variables deploy/test.sh exports (STRACKT_TEST_*). */
export function pgTemporalOptionsFromEnv(dir: string): PgTemporalOptions {
  const required = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: run the tests through \`npm test\` (deploy/test.sh)`);
    return value;
  };
  return {
    pgBaseUrl: required('STRACKT_TEST_PG_BASE_URL'),
    dir,
    serverBin: required('STRACKT_TEST_TEMPORAL_SERVER_BIN'),
    sqlToolBin: required('STRACKT_TEST_TEMPORAL_SQL_TOOL_BIN'),
    cliBin: required('STRACKT_TEST_TEMPORAL_BIN'),
  };
}

const searchAttributes = readFileSync(
  fileURLToPath(new URL('../../deploy/search-attributes.txt', import.meta.url)),
  'utf8',
)
  .split('\n')
  .filter(Boolean)
  .map((line) => line.split('=') as [string, string]);

/** strackt's dynamic configuration of Temporal (KEY=JSON lines; start-dev takes the same). */
const stracktDynamicConfig = Object.fromEntries(
  readFileSync(fileURLToPath(new URL('../../deploy/temporal-dynamic-config.txt', import.meta.url)), 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), JSON.parse(line.slice(at + 1)) as unknown];
    }),
);

/**
 * A Temporal server as production runs it (docs/DEPLOYMENT.md): the server binary on PostgreSQL, two
 * fresh databases whose schemas temporal-sql-tool sets up (create, setup-schema, update-schema to the
 * release's latest), namespace strackt and its search attributes registered through the CLI. No TLS:
 * temporal-tls.test.ts covers that. Four history shards, not production's 512: a test cluster holds a
 * handful of workflows at a time, and the count only matters for growth (it is fixed for a cluster's life).
 */
export async function startPgTemporal(options: PgTemporalOptions): Promise<PgTemporal> {
  const pg = new URL(options.pgBaseUrl);
  const user = decodeURIComponent(pg.username);
  const host = pg.hostname;
  const port = pg.port || '5432';
  const history = `temporal_${randomBytes(5).toString('hex')}`;
  const databases = { history, visibility: `${history}_visibility` };
  // The password goes by environment only, to the tool and the server alike: never in argv or a file.
  const passwordEnv = { STRACKT_TEMPORAL_DB_PASSWORD: decodeURIComponent(pg.password) };
  const sqlTool = (db: string, ...args: string[]) =>
    promisify(execFile)(
      options.sqlToolBin,
      ['--plugin', 'postgres12', '--ep', host, '-p', port, '-u', user, '--db', db, ...args],
      { env: { PATH: process.env.PATH, SQL_PASSWORD: passwordEnv.STRACKT_TEMPORAL_DB_PASSWORD } },
    );
  const dropDatabases = () =>
    Promise.allSettled(Object.values(databases).map((db) => sqlTool(db, 'drop-database', '--force')));

  try {
    for (const [db, schema] of [
      [databases.history, 'temporal'],
      [databases.visibility, 'visibility'],
    ] as const) {
      await sqlTool(db, 'create-database');
      await sqlTool(db, 'setup-schema', '-v', '0.0');
      await sqlTool(db, 'update-schema', '--schema-name', `postgresql/v12/${schema}`);
    }
  } catch (err) {
    await dropDatabases();
    throw err;
  }

  const [grpc, http, historyGrpc, matchingGrpc, workerGrpc] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const [frontendMembers, historyMembers, matchingMembers, workerMembers] = (await freePortsBelow32768(
    4,
  )) as [number, number, number, number];
  // Small pools: the test PostgreSQL (max_connections 100) is shared by every test file and process.
  const store = (db: string, maxConns: number) => `
      sql:
        pluginName: postgres12
        databaseName: ${db}
        connectAddr: ${JSON.stringify(`${host}:${port}`)}
        connectProtocol: tcp
        user: ${JSON.stringify(user)}
        password: {{ env "STRACKT_TEMPORAL_DB_PASSWORD" | quote }}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const rpc = (grpcPort: number, members: number, extra = '') =>
    `{ rpc: { grpcPort: ${grpcPort}, membershipPort: ${members}, bindOnLocalHost: true${extra} } }`;
  const config = `# enable-template
log: { stdout: true, level: warn }
persistence:
  numHistoryShards: 4
  defaultStore: default
  visibilityStore: visibility
  datastores:
    default:${store(databases.history, 6)}
    visibility:${store(databases.visibility, 3)}
global:
  membership: { maxJoinDuration: 30s, broadcastAddress: 127.0.0.1 }
services:
  frontend: ${rpc(grpc, frontendMembers, `, httpPort: ${http}`)}
  history: ${rpc(historyGrpc, historyMembers)}
  matching: ${rpc(matchingGrpc, matchingMembers)}
  worker: ${rpc(workerGrpc, workerMembers)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: { enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "127.0.0.1:${grpc}", httpAddress: "127.0.0.1:${http}" }
dcRedirectionPolicy: { policy: noop }
dynamicConfigClient: { filepath: ${JSON.stringify(join(options.dir, 'dynamicconfig.yaml'))}, pollInterval: 10s }
`;
  const dynamicConfig = { ...stracktDynamicConfig, ...options.dynamicConfig };
  await mkdir(join(options.dir, 'config'), { recursive: true });
  await writeFile(join(options.dir, 'config', 'postgres.yaml'), config);
  await writeFile(
    join(options.dir, 'dynamicconfig.yaml'),
    Object.entries(dynamicConfig)
      .map(([key, value]) => `${key}:\n  - value: ${JSON.stringify(value)}\n`)
      .join(''),
  );

  const logFile = join(options.dir, 'temporal-server.log');
  const out = createWriteStream(logFile);
  const server = spawn(
    options.serverBin,
    ['--root', options.dir, '--config', 'config', '--env', 'postgres', '--allow-no-auth', 'start'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, ...passwordEnv } },
  );
  server.stdout.pipe(out);
  server.stderr.pipe(out);
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const stopServer = async () => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
    const killer = setTimeout(() => server.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(killer);
  };

  const address = `127.0.0.1:${grpc}`;
  const cli = (...args: string[]) =>
    promisify(execFile)(options.cliBin, [...args, '--address', address], {
      env: { PATH: process.env.PATH, HOME: options.dir },
    });
  try {
    await waitFor(
      'the PostgreSQL Temporal server to take namespace strackt',
      async () => {
        if (server.exitCode !== null) throw new Error(`it exited; its log: ${logFile}`);
        await cli('operator', 'namespace', 'create', '--namespace', 'strackt', '--retention', '1d').catch(
          (err: Error) => {
            // A first try that timed out on the client may have made it all the same.
            if (!/already (exists|registered)/i.test(String(err))) throw err;
          },
        );
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    await waitFor(
      'namespace strackt to take its search attributes',
      async () => {
        await cli(
          'operator',
          'search-attribute',
          'create',
          '--namespace',
          'strackt',
          ...searchAttributes.flatMap(([name, type]) => ['--name', name, '--type', type]),
        );
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    // The frontend learns of new attributes when it next refreshes the namespace (every 2 s): until
    // then a start naming them is refused. Ready is when one is taken, as strackt's would be.
    await waitFor(
      'a workflow start with strackt’s search attributes to be taken',
      async () => {
        const id = `readiness-probe-${randomBytes(4).toString('hex')}`;
        await cli(
          'workflow',
          'start',
          '--namespace',
          'strackt',
          '--type',
          'readinessProbe',
          '--task-queue',
          'readiness-probe',
          '--workflow-id',
          id,
          ...searchAttributes.flatMap(([name]) => ['--search-attribute', `${name}="readiness-probe"`]),
        );
        await cli('workflow', 'terminate', '--namespace', 'strackt', '--workflow-id', id);
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  } catch (err) {
    server.kill('SIGKILL');
    await exited;
    await dropDatabases();
    throw err;
  }
  return {
    address,
    pid: server.pid!,
    databases,
    log: () => readFile(logFile, 'utf8'),
    stop: async () => {
      await stopServer();
      await dropDatabases();
    },
  };
}
