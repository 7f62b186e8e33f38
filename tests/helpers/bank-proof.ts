import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { lookupUser } from '../../agent/unix-users.ts';
import { unpackArchive } from '../../format/archive-reader.ts';
import { openManifest } from '../../format/manifest-object.ts';
import { postgresBinDir } from './services.ts';
import { freePort, stack, uniqueName, waitFor } from './stack.ts';
import { accounts, auditBank, opening } from './transfers.ts';

/**
 * The point-in-time proof's second half: a snapshot of the bank (PostgreSQL in volume `pgdata`, the
 * ledger service in `ledger`) restored with the format library alone into a fresh folder, then
 * audited there (auditRestoredBank). `committed` is how many transfers committed while the backup
 * ran, an upper bound for those in the snapshot.
 */
export async function restoreAndAuditBank(
  s3: S3Client,
  bucket: string,
  secretKey: Buffer,
  objects: { data: string; manifest: string },
  committed: number,
): Promise<void> {
  const get = async (key: string) =>
    (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body as Readable;
  const manifestBytes = Buffer.concat(await (await get(objects.manifest)).toArray());
  const manifest = await openManifest(manifestBytes, { secretKey });
  const staging = join(stack.runDir, uniqueName('restored'));
  await unpackArchive({ source: await get(objects.data), key: { secretKey }, manifest, staging });
  await auditRestoredBank(staging, committed);
}

/**
 * The bank as restored into `staging` (its volumes as folders): PostgreSQL must start on it, the
 * money add up, and the ledger agree with the bank, with no more transfers than `committed`.
 * Removes the folder.
 */
export async function auditRestoredBank(staging: string, committed: number): Promise<void> {
  // The source PostgreSQL still runs on this same machine with the pid its lock file names.
  await rm(join(staging, 'pgdata', 'postmaster.pid'));
  await chmod(staging, 0o755);
  const port = await freePort();
  const pgUser = (await lookupUser('postgres'))!;
  const pg = spawn(
    join(postgresBinDir(), 'postgres'),
    [
      '-D',
      join(staging, 'pgdata'),
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], uid: pgUser.uid, gid: pgUser.gid },
  );
  const pgExited = new Promise((resolve) => pg.once('exit', resolve));
  pg.stderr.resume();
  try {
    const ledger = (await readFile(join(staging, 'ledger', 'ledger.log'), 'utf8'))
      .split('\n')
      .filter(Boolean);
    const audit = await waitFor('the restored PostgreSQL to answer', () => auditBank(port, ledger), {
      timeoutMs: 60_000,
    });
    assert.equal(audit.total, accounts * opening, 'the money adds up');
    assert.ok(audit.logAgrees, 'the transfer log agrees with every balance');
    assert.ok(
      audit.ledgerAgrees,
      `the ledger service agrees with the bank (${ledger.length} in the ledger, ${audit.transfers} in the bank)`,
    );
    assert.ok(audit.transfers > 0 && audit.transfers <= committed);
  } finally {
    pg.kill('SIGINT');
    await pgExited;
    await rm(staging, { recursive: true, force: true });
  }
}
