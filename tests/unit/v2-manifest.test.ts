import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { SnapshotFormatError } from '../../format/format-error.ts';
import { newDataKey } from '../../format/data-key.ts';
import { openManifest } from '../../format/manifest-object.ts';
import { generateTeamKey } from '../../format/team-key.ts';
import { FormatV2Error } from '../../format/v2/errors.ts';
import {
  manifestChunking,
  openManifestV2,
  parseManifestV2,
  sealManifestV2,
  type ManifestV2,
} from '../../format/v2/manifest-v2.ts';

const team = generateTeamKey();
const id = (k: number) => k.toString(16).padStart(64, '0');

function manifest(): ManifestV2 {
  return {
    format: 'strackt-snapshot',
    formatVersion: 2,
    snapshotId: 'snap_abc123',
    teamId: 'team_abc123',
    environmentId: 'env_abc123',
    environmentName: 'shop',
    sourceServerId: 'srv_abc123',
    createdAt: '2026-12-05T10:00:00.123Z',
    keyId: 'ab'.repeat(16),
    chunking: manifestChunking,
    services: [{ name: 'db', volumes: ['pgdata'] }],
    volumes: [{ name: 'pgdata', entries: 4, bytes: 3 }],
    entries: [
      { path: 'pgdata', type: 'directory', mode: 0o700, uid: 101, gid: 104, mtime: 1795000000.123 },
      {
        path: 'pgdata/PG_VERSION',
        type: 'file',
        mode: 0o600,
        uid: 101,
        gid: 104,
        mtime: 1,
        size: 3,
        chunks: [id(1)],
      },
      { path: 'pgdata/empty', type: 'file', mode: 0o600, uid: 101, gid: 104, mtime: 1, size: 0, chunks: [] },
      { path: 'pgdata/link', type: 'symlink', target: 'PG_VERSION', mode: 0o777, uid: 0, gid: 0, mtime: 1 },
    ],
  };
}

it('seals and opens a manifest, compressed, under its own data key', async () => {
  const m = manifest();
  m.entries.push(
    ...Array.from({ length: 2000 }, (_, k) => ({
      path: `pgdata/f${k}`,
      type: 'file' as const,
      mode: 0o600,
      uid: 1,
      gid: 1,
      mtime: 1,
      size: 2048,
      chunks: [id(k % 10), id(7)],
    })),
  );
  const sealed = await sealManifestV2(m, team.publicKey, newDataKey());
  assert.ok(sealed.length < JSON.stringify(m).length / 5, `${sealed.length} bytes`);
  assert.deepEqual(await openManifestV2(sealed, { secretKey: team.secretKey }), m);
  // A v1 reader refuses it by its version, as malformed, rather than misreading it.
  await assert.rejects(
    openManifest(sealed, { secretKey: team.secretKey }),
    (err: SnapshotFormatError) => err.kind === 'malformed_manifest',
  );
});

it('refuses forged manifests, naming the field', () => {
  const forge = (edit: (m: ManifestV2 & Record<string, unknown>) => void) => {
    const m = manifest() as ManifestV2 & Record<string, unknown>;
    edit(m);
    return () => parseManifestV2(JSON.parse(JSON.stringify(m)));
  };
  const refused = (pattern: RegExp) => (err: unknown) =>
    err instanceof FormatV2Error && err.kind === 'malformed_manifest' && pattern.test(err.message);
  assert.throws(
    forge((m) => (m.formatVersion = 1 as 2)),
    refused(/formatVersion/),
  );
  assert.throws(
    forge((m) => (m.entries[1]!.chunks = ['XYZ'])),
    refused(/entries\.1\.chunks\.0/),
  );
  assert.throws(
    forge((m) => delete m.entries[1]!.chunks),
    refused(/entries\.1/),
  );
  assert.throws(
    forge((m) => (m.entries[0]!.chunks = [])),
    refused(/entries\.0/),
  );
  assert.throws(
    forge((m) => (m.entries[1]!.size = -1)),
    refused(/entries\.1\.size/),
  );
  // Ids of another scheme (format 2's first, keyed BLAKE2b, named or not) are refused as such, before
  // any chunk would fail its check.
  assert.throws(
    forge((m) => (m.chunking = { ...m.chunking, id: 'blake2b-256' as 'hmac-sha256' })),
    refused(/chunking\.id/),
  );
  assert.throws(
    forge((m) => {
      const { id: _, ...rest } = m.chunking;
      m.chunking = rest as ManifestV2['chunking'];
    }),
    refused(/chunking\.id/),
  );
  assert.throws(
    forge((m) => (m.data = { object: 'x', tarBytes: 1 })),
    refused(/data|Unrecognized/),
  );
});
