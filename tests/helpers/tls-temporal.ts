import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts, stack, waitFor } from './stack.ts';
import type { TestPki } from './test-pki.ts';

export interface TlsTemporal {
  address: string;
  /** The variables that reach it with the client certificate, for the CLI and strackt alike. */
  clientEnv: Record<string, string>;
  log: () => Promise<string>;
  stop: () => Promise<void>;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through \`npm test\` (deploy/test.sh)`);
  return value;
}

/**
 * A real Temporal server (the release the dev server embeds, built by deploy/tools.sh) whose
 * frontend speaks only mTLS with the test CA's certificates, on in-memory SQLite, with namespace
 * strackt made through the CLI over the same TLS.
 */
export async function startTlsTemporal(pki: TestPki, dir: string): Promise<TlsTemporal> {
  const [
    grpc,
    http,
    frontendMembers,
    history,
    historyMembers,
    matching,
    matchingMembers,
    worker,
    workerMembers,
  ] = (await freePorts(9)) as [number, number, number, number, number, number, number, number, number];
  const sqlite = (name: string) => `
    ${name}:
      sql: { pluginName: sqlite, databaseName: ${name}, connectAddr: localhost, connectProtocol: tcp,
             connectAttributes: { mode: memory, cache: private }, maxConns: 1, maxIdleConns: 1 }`;
  const rpc = (port: number, members: number) =>
    `{ grpcPort: ${port}, membershipPort: ${members}, bindOnLocalHost: true }`;
  // The system worker (schedules) reaches the frontend like any client, so it needs a client certificate too.
  const config = `
log: { stdout: true, level: warn }
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 1
  datastores:${sqlite('default')}${sqlite('visibility')}
global:
  membership: { maxJoinDuration: 30s, broadcastAddress: 127.0.0.1 }
  tls:
    frontend:
      server: { certFile: ${pki.serverCert}, keyFile: ${pki.serverKey}, requireClientAuth: true, clientCaFiles: [${pki.ca}] }
      client: { serverName: temporal.test, rootCaFiles: [${pki.ca}] }
    systemWorker:
      certFile: ${pki.clientCert}
      keyFile: ${pki.clientKey}
      client: { serverName: temporal.test, rootCaFiles: [${pki.ca}] }
services:
  frontend: { rpc: { grpcPort: ${grpc}, membershipPort: ${frontendMembers}, bindOnLocalHost: true, httpPort: ${http} } }
  history: { rpc: ${rpc(history, historyMembers)} }
  matching: { rpc: ${rpc(matching, matchingMembers)} }
  worker: { rpc: ${rpc(worker, workerMembers)} }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: { enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "127.0.0.1:${grpc}", httpAddress: "127.0.0.1:${http}" }
dcRedirectionPolicy: { policy: noop }
`;
  await mkdir(join(dir, 'config'), { recursive: true });
  await writeFile(join(dir, 'config', 'tls.yaml'), config);
  const logFile = join(dir, 'temporal-server.log');
  const out = createWriteStream(logFile);
  const server = spawn(
    required('STRACKT_TEST_TEMPORAL_SERVER_BIN'),
    ['--root', dir, '--config', 'config', '--env', 'tls', '--allow-no-auth', 'start'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stdout.pipe(out);
  server.stderr.pipe(out);
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));

  const address = `127.0.0.1:${grpc}`;
  const clientEnv = {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  };
  const cli = (...args: string[]) =>
    promisify(execFile)(required('STRACKT_TEST_TEMPORAL_BIN'), args, {
      env: { PATH: process.env.PATH, HOME: dir, ...clientEnv },
    });
  try {
    await waitFor(
      'the TLS Temporal server to take namespace strackt',
      async () => {
        if (server.exitCode !== null) throw new Error(`it exited; its log: ${logFile}`);
        await cli('operator', 'namespace', 'create', '--namespace', stack.namespace);
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  } catch (err) {
    server.kill('SIGKILL');
    throw err;
  }
  return {
    address,
    clientEnv,
    log: () => readFile(logFile, 'utf8'),
    stop: async () => {
      if (server.exitCode === null) server.kill('SIGTERM');
      await exited;
    },
  };
}
