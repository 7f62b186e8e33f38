import { Connection, Client, isGrpcServiceError } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalTarget } from './temporal-config.ts';

export class TemporalUnreachableError extends Error {
  override name = 'TemporalUnreachableError';
}

// gRPC status codes (grpc-js is not a direct dependency).
const DEADLINE_EXCEEDED = 4;
const PERMISSION_DENIED = 7;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

const tlsHints: [RegExp, string][] = [
  // A plain-text server answers the TLS hello with an HTTP/2 frame, which OpenSSL reads as a bad version.
  [/wrong version number|packet length too long/, 'is the server plain text?'],
  [
    /certificate required/,
    'the server wants a client certificate: TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH',
  ],
  [
    /unable to verify|self-signed|unknown ca/i,
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH must be the CA that signed the server's certificate",
  ],
  [/altnames/, 'TEMPORAL_TLS_SERVER_NAME sets the name checked'],
];

/**
 * The cause in a failed connection's message, made short and with what to check: gRPC wraps it
 * ("14 UNAVAILABLE: No connection established. Last error: ...") and OpenSSL spells it as a
 * colon-separated record whose fifth field is the reason.
 */
export function connectFailureCause(message: string, tls: boolean): string {
  let cause = /Last error: (.*?)(?:\s*\(\d{4}-[^)]*\))?\.? Resolution note:/s.exec(message)?.[1] ?? message;
  cause = cause.replace(/^Error(?: \[\w+\])?: /, '');
  const openssl = /^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):/.exec(cause);
  cause = (openssl ? openssl[1]! : cause).split('\n')[0]!.trim();
  // Node 24+ appends advice of its own to certificate errors; the hint below says what to set here.
  cause = cause.replace(
    /; if the root CA is installed locally, try running Node\.js with --use-system-ca$/,
    '',
  );
  // Node 26 refuses an IP address as the TLS server name, which the SDK's client sends for an address.
  if (/Setting the TLS ServerName to an IP address is not permitted/.test(cause))
    return (
      'TLS cannot start: Node.js sends no IP address as the TLS server name (give TEMPORAL_ADDRESS by ' +
      "name, or set TEMPORAL_TLS_SERVER_NAME to a name in the server's certificate)"
    );
  if (!tls)
    // What grpc-js says when the server hung up before HTTP/2 began, as a TLS server does.
    return cause === 'Failed to connect' ? `${cause} (does the server expect TLS? see TEMPORAL_TLS)` : cause;
  const hint = tlsHints.find(([pattern]) => pattern.test(cause))?.[1];
  if (!openssl && !hint) return cause;
  return `TLS handshake failed: ${cause}${hint ? ` (${hint})` : ''}`;
}

function unreachable(target: TemporalTarget, err: unknown): TemporalUnreachableError {
  const cause = connectFailureCause((err as Error).message, target.tls !== false);
  return new TemporalUnreachableError(
    `cannot reach Temporal at ${target.address} (TEMPORAL_ADDRESS): ${cause}`,
  );
}

/**
 * Connection.connect waits for the channel to be ready and then says only that the deadline passed;
 * a single call that may not wait fails at once with the reason (refused, a certificate, a TLS
 * alert), which is what an operator needs to see.
 */
async function probe(target: TemporalTarget): Promise<void> {
  const { address, tls, apiKey } = target;
  // No interceptors: the default ones retry an unavailable server until the deadline.
  const connection = Connection.lazy({ address, tls, apiKey, interceptors: [] });
  try {
    await connection.withDeadline(Date.now() + 5000, () => connection.workflowService.getSystemInfo({}));
  } catch (err) {
    // Any other answer came from a server: reachable, and what is wrong shows in the namespace check.
    if (!isGrpcServiceError(err) || err.code === UNAVAILABLE || err.code === DEADLINE_EXCEEDED)
      throw unreachable(target, err);
  } finally {
    await connection.close();
  }
}

/** Temporal answered but would not let this client in: the credentials are wrong, not the address. */
function refusal(target: TemporalTarget, err: unknown): TemporalUnreachableError | undefined {
  const cause = err instanceof Error && isGrpcServiceError(err.cause) ? err.cause : err;
  if (!isGrpcServiceError(cause) || ![UNAUTHENTICATED, PERMISSION_DENIED].includes(cause.code))
    return undefined;
  const credentials = target.apiKey ? 'TEMPORAL_API_KEY' : 'a client certificate or TEMPORAL_API_KEY';
  return new TemporalUnreachableError(
    `Temporal at ${target.address} refused this client for namespace "${target.namespace}" (${credentials}): ${cause.message}`,
  );
}

async function checkNamespace(client: Client, target: TemporalTarget): Promise<void> {
  try {
    await client.workflowService.describeNamespace({ namespace: target.namespace });
  } catch (err) {
    throw (
      refusal(target, err) ??
      new TemporalUnreachableError(
        `Temporal at ${target.address} has no usable namespace "${target.namespace}" (TEMPORAL_NAMESPACE): ${(err as Error).message}`,
      )
    );
  }
}

/** A client for the API and scripts, failing at start with where it looked instead of on first use. */
export async function connectClient(target: TemporalTarget): Promise<Client> {
  const { address, namespace, tls, apiKey } = target;
  await probe(target);
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, tls, apiKey, connectTimeout: '5 seconds' });
  } catch (err) {
    throw refusal(target, err) ?? unreachable(target, err);
  }
  const client = new Client({ connection, namespace });
  await checkNamespace(client, target);
  return client;
}

/** The native connection workers poll with, after the same check (it has no connect timeout of its own). */
export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  const probeClient = await connectClient(target);
  await probeClient.connection.close();
  const { address, tls, apiKey } = target;
  try {
    return await NativeConnection.connect({ address, tls, apiKey });
  } catch (err) {
    throw unreachable(target, err);
  }
}
