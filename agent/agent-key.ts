import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateTeamKey, publicKeyOf } from '../format/team-key.ts';

export interface AgentKey {
  publicKey: Buffer;
  secretKey: Buffer;
}

/**
 * The agent's own X25519 key pair, made at first start and kept in its data root (mode 600). The
 * control plane re-seals a restore's data key to its public key, so the team key never reaches a
 * server and a data key travels only in a form this one agent can open.
 */
export async function loadOrCreateAgentKey(dataRoot: string): Promise<AgentKey> {
  const path = join(dataRoot, 'agent.key');
  try {
    const secretKey = Buffer.from((await readFile(path, 'utf8')).trim(), 'hex');
    if (secretKey.length !== 32) throw new Error(`${path} does not hold a 32-byte key`);
    return { secretKey, publicKey: publicKeyOf(secretKey) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pair = generateTeamKey();
  await mkdir(dataRoot, { recursive: true });
  await writeFile(`${path}.tmp`, pair.secretKey.toString('hex'), { mode: 0o600 });
  await chmod(`${path}.tmp`, 0o600);
  await rename(`${path}.tmp`, path);
  return pair;
}
