import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts, stack, waitFor } from './stack.ts';
import type { TestPki } from './test-pki.ts';

export interface TlsTemporal {
  address: string;
  /** The variables that reach it, for the CLI and strackt alike: the client certificate and an API key for strackt. */
  clientEnv: Record<string, string>;
  /** An API key (a JWT the server's authorizer checks) granting these permissions, as "namespace:role". */
  apiKey: (permissions: string[]) => string;
  log: () => Promise<string>;
  stop: () => Promise<void>;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through \`npm test\` (deploy/test.sh)`);
  return value;
}

/** Signs API keys the way a self-hosted Temporal checks them: RS256 JWTs whose key it fetches as JWKS. */
async function startKeyIssuer(): Promise<{
  jwksUrl: string;
  apiKey: TlsTemporal['apiKey'];
  close: () => void;
}> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwks = JSON.stringify({
    keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'test', alg: 'RS256' }],
  });
  const server = createServer((_req, res) => res.end(jwks));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return {
    jwksUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    apiKey: (permissions) => {
      const now = Math.floor(Date.now() / 1000);
      const signed = `${part({ alg: 'RS256', typ: 'JWT', kid: 'test' })}.${part({ sub: 'strackt', permissions, iat: now, exp: now + 3600 })}`;
      return `${signed}.${sign('RSA-SHA256', Buffer.from(signed), privateKey).toString('base64url')}`;
    },
    close: () => server.close(),
  };
}

/**
 * A real Temporal server (the release the dev server embeds, built by deploy/tools.sh), set up as a
 * production cluster would be: its frontend takes only mTLS with the test CA's certificates, and its
 * authorizer lets a client in only with an API key granting the namespace. In-memory SQLite; namespace
 * strackt made through the CLI over the same TLS, with an admin key.
 */
export async function startTlsTemporal(pki: TestPki, dir: string): Promise<TlsTemporal> {
  const issuer = await startKeyIssuer();
  const [grpc, http, internalGrpc, internalHttp, ...others] = await freePorts(12);
  const [
    frontendMembers,
    internalMembers,
    history,
    historyMembers,
    matching,
    matchingMembers,
    worker,
    workerMembers,
  ] = others as [number, number, number, number, number, number, number, number];
  const sqlite = (name: string) => `
    ${name}:
      sql: { pluginName: sqlite, databaseName: ${name}, connectAddr: localhost, connectProtocol: tcp,
             connectAttributes: { mode: memory, cache: private }, maxConns: 1, maxIdleConns: 1 }`;
  const rpc = (port: number, members: number) =>
    `{ grpcPort: ${port}, membershipPort: ${members}, bindOnLocalHost: true }`;
  // Temporal's own worker (schedules) goes through internal-frontend, which the authorizer leaves alone.
  const config = `
log: { stdout: true, level: warn }
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 1
  datastores:${sqlite('default')}${sqlite('visibility')}
global:
  membership: { maxJoinDuration: 30s, broadcastAddress: 127.0.0.1 }
  authorization:
    authorizer: default
    claimMapper: default
    permissionsClaimName: permissions
    jwtKeyProvider: { keySourceURIs: [${issuer.jwksUrl}], refreshInterval: 1h }
  tls:
    frontend:
      server: { certFile: ${pki.serverCert}, keyFile: ${pki.serverKey}, requireClientAuth: true, clientCaFiles: [${pki.ca}] }
      client: { serverName: temporal.test, rootCaFiles: [${pki.ca}] }
services:
  frontend: { rpc: { grpcPort: ${grpc}, membershipPort: ${frontendMembers}, bindOnLocalHost: true, httpPort: ${http} } }
  internal-frontend: { rpc: { grpcPort: ${internalGrpc}, membershipPort: ${internalMembers}, bindOnLocalHost: true, httpPort: ${internalHttp} } }
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
  const services = ['frontend', 'internal-frontend', 'history', 'matching', 'worker'];
  const server = spawn(
    required('STRACKT_TEST_TEMPORAL_SERVER_BIN'),
    [
      '--root',
      dir,
      '--config',
      'config',
      '--env',
      'tls',
      'start',
      ...services.flatMap((s) => ['--service', s]),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stdout.pipe(out);
  server.stderr.pipe(out);
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));

  const address = `127.0.0.1:${grpc}`;
  const certificateEnv = {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  };
  const cli = (...args: string[]) =>
    promisify(execFile)(required('STRACKT_TEST_TEMPORAL_BIN'), args, {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        ...certificateEnv,
        TEMPORAL_API_KEY: issuer.apiKey(['temporal-system:admin']),
      },
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
    issuer.close();
    throw err;
  }
  return {
    address,
    clientEnv: { ...certificateEnv, TEMPORAL_API_KEY: issuer.apiKey([`${stack.namespace}:admin`]) },
    apiKey: issuer.apiKey,
    log: () => readFile(logFile, 'utf8'),
    stop: async () => {
      if (server.exitCode === null) server.kill('SIGTERM');
      await exited;
      issuer.close();
    },
  };
}
