import { Connection, Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalTarget } from './temporal-config.ts';

export class TemporalUnreachableError extends Error {
  override name = 'TemporalUnreachableError';
}

function unreachable(address: string, err: unknown): TemporalUnreachableError {
  return new TemporalUnreachableError(
    `cannot reach Temporal at ${address} (TEMPORAL_ADDRESS): ${(err as Error).message.split('\n')[0]}`,
  );
}

async function checkNamespace(client: Client, address: string, namespace: string): Promise<void> {
  try {
    await client.workflowService.describeNamespace({ namespace });
  } catch (err) {
    throw new TemporalUnreachableError(
      `Temporal at ${address} has no usable namespace "${namespace}" (TEMPORAL_NAMESPACE): ${(err as Error).message}`,
    );
  }
}

/** A client for the API and scripts, failing at start with where it looked instead of on first use. */
export async function connectClient(target: TemporalTarget): Promise<Client> {
  const { address, namespace, tls, apiKey } = target;
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, tls, apiKey, connectTimeout: '5 seconds' });
  } catch (err) {
    throw unreachable(address, err);
  }
  const client = new Client({ connection, namespace });
  await checkNamespace(client, address, namespace);
  return client;
}

/** The native connection workers poll with, after the same check (it has no connect timeout of its own). */
export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  const probe = await connectClient(target);
  await probe.connection.close();
  const { address, tls, apiKey } = target;
  try {
    return await NativeConnection.connect({ address, tls, apiKey });
  } catch (err) {
    throw unreachable(address, err);
  }
}
