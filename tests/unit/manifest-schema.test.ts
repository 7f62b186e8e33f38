import assert from 'node:assert/strict';
import { it } from 'node:test';
import { newDataKey } from '../../format/data-key.ts';
import { SnapshotFormatError } from '../../format/format-error.ts';
import { openManifest, sealManifest } from '../../format/manifest-object.ts';
import { maxManifestEntries, parseManifest } from '../../format/manifest-schema.ts';
import { buildManifest, maxManifestBytes, type Manifest } from '../../format/manifest.ts';
import { generateTeamKey } from '../../format/team-key.ts';

const team = generateTeamKey();
const dataKey = newDataKey();

function manifest(): Manifest {
  return buildManifest(
    {
      snapshotId: 'snap_abc123',
      teamId: 'team_abc123',
      environmentId: 'env_abc123',
      environmentName: 'shop',
      sourceServerId: 'srv_abc123',
      createdAt: '2026-12-04T10:00:00.123Z',
      keyId: 'ab'.repeat(16),
      services: [{ name: 'db', volumes: ['pgdata'] }],
    },
    {
      entries: [
        { path: 'pgdata', type: 'directory', mode: 0o700, uid: 101, gid: 104, mtime: 1795000000.123 },
        {
          path: 'pgdata/PG_VERSION',
          type: 'file',
          mode: 0o600,
          uid: 101,
          gid: 104,
          mtime: 1795000000,
          size: 3,
          sha256: 'cd'.repeat(32),
        },
      ],
      tarBytes: 10_240,
    },
  );
}

const malformed = (err: unknown) => err instanceof SnapshotFormatError && err.kind === 'malformed_manifest';

it('opens a manifest as written, sealed with the team key', async () => {
  const m = manifest();
  assert.deepEqual(await openManifest(await sealManifest(m, team.publicKey, dataKey), { dataKey }), m);
});

it('refuses a forged manifest, sealed with the team’s public key as any server could, naming the field', async () => {
  const forgeries: [string, (m: Manifest) => void, RegExp][] = [
    ['a negative size', (m) => (m.entries[1]!.size = -5_000_000_000), /entries\.1\.size/],
    ['a fractional size', (m) => (m.entries[1]!.size = 1.5), /entries\.1\.size/],
    ['a size as text', (m) => ((m.entries[1] as unknown as { size: string }).size = '3'), /entries\.1\.size/],
    ['a size beyond 2^53', (m) => (m.entries[1]!.size = 2 ** 60), /entries\.1\.size/],
    ['negative volume bytes', (m) => (m.volumes[0]!.bytes = -1), /volumes\.0\.bytes/],
    ['a negative archive size', (m) => (m.data.tarBytes = -1), /data\.tarBytes/],
    ['a setuid mode beyond 07777', (m) => (m.entries[1]!.mode = 0o104755), /entries\.1\.mode/],
    ['a negative uid', (m) => (m.entries[1]!.uid = -1), /entries\.1\.uid/],
    ['a NUL in a path', (m) => (m.entries[1]!.path = 'pgdata/a\0b'), /entries\.1\.path/],
    [
      'an unknown entry type',
      (m) => ((m.entries[1] as unknown as { type: string }).type = 'chardev'),
      /entries\.1\.type/,
    ],
    [
      'an unknown field',
      (m) => ((m.entries[1] as unknown as { setuid: boolean }).setuid = true),
      /entries\.1/,
    ],
    [
      'another format version',
      (m) => ((m as unknown as { formatVersion: number }).formatVersion = 2),
      /formatVersion/,
    ],
    ['an id that is no id', (m) => (m.environmentId = '../../etc'), /environmentId/],
  ];
  for (const [what, forge, field] of forgeries) {
    const m = manifest();
    forge(m);
    await assert.rejects(
      openManifest(await sealManifest(m, team.publicKey, dataKey), { dataKey }),
      (err: Error) => {
        assert.ok(malformed(err), `${what}: ${err.message}`);
        assert.match(err.message, field, what);
        return true;
      },
    );
  }
});

it('refuses more entries than a manifest may hold, and a manifest object over its bound before opening it', async () => {
  const m = manifest();
  const many = {
    ...m,
    entries: Array<Manifest['entries'][number]>(maxManifestEntries + 1).fill(m.entries[0]!),
  };
  assert.throws(
    () => parseManifest(many),
    (err: Error) => malformed(err) && /entries/.test(err.message),
  );
  await assert.rejects(openManifest(Buffer.alloc(maxManifestBytes + 1), { dataKey }), (err: Error) => {
    assert.ok(malformed(err));
    assert.match(err.message, /more than the/);
    return true;
  });
});
