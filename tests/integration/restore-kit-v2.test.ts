import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { newDataKey } from '../../format/data-key.ts';
import { keyIdOf, generateTeamKey, printableSecretKey } from '../../format/team-key.ts';
import { chunkIdOf, dedupKeyOf } from '../../format/v2/chunk-id.ts';
import { Chunker } from '../../format/v2/chunker.ts';
import { manifestChunking, sealManifestV2, type ManifestV2 } from '../../format/v2/manifest-v2.ts';
import { newPackId, packObjectKey } from '../../format/v2/pack-layout.ts';
import { PackWriter } from '../../format/v2/pack-writer.ts';

// The restore kit assembles a version-2 snapshot with no strackt code, as a customer would run it.
const work = mkdtempSync(join(tmpdir(), 'restore-kit-v2-'));
after(() => rmSync(work, { recursive: true, force: true }));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const vectors = join(repoRoot, 'docs/test-vectors');
const kit = (name: string) => join(repoRoot, 'restore-kit', name);

/** The C tool, built as the kit's README says; with it the assembler must not need PyNaCl at all. */
const cTool = join(work, 'strackt-decrypt');
const withoutPyNaCl = join(work, 'no-pynacl');
before(async () => {
  await promisify(execFile)('cc', ['-O2', '-o', cTool, kit('strackt-decrypt.c'), '-lsodium']);
  mkdirSync(join(withoutPyNaCl, 'nacl'), { recursive: true });
  writeFileSync(join(withoutPyNaCl, 'nacl/__init__.py'), 'raise ImportError("PyNaCl is not installed")\n');
});

/** Each way a customer runs the kit: Python with PyNaCl, or Python with the C tool and no PyNaCl. */
const decryptors = [
  { name: 'PyNaCl', args: [] as string[], env: {} },
  { name: 'the C tool', args: ['--decryptor', cTool], env: { PYTHONPATH: withoutPyNaCl } },
];
type Decryptor = (typeof decryptors)[number];

async function assemble(decryptor: Decryptor, keyFile: string, teamDir: string, out: string) {
  try {
    await promisify(execFile)(
      '/usr/bin/python3',
      [
        kit('strackt-assemble-v2.py'),
        ...decryptor.args,
        '--key-file',
        keyFile,
        teamDir,
        'env_vector/snap_vector',
        out,
      ],
      { env: { ...process.env, ...decryptor.env } },
    );
    return '';
  } catch (err) {
    return (err as { stderr: string }).stderr;
  }
}

async function extract(out: string): Promise<string> {
  const dest = join(out, 'restored');
  await promisify(execFile)('/usr/bin/python3', [
    kit('strackt-extract.py'),
    '--manifest',
    join(out, 'manifest.json'),
    join(out, 'snapshot.tar'),
    dest,
  ]);
  return dest;
}

for (const decryptor of decryptors)
  describe(`strackt-assemble-v2.py with ${decryptor.name}`, () => {
    const at = (name: string) => join(work, `${decryptor.args.length ? 'c' : 'py'}-${name}`);
    it('restores the bucket test vector, byte for byte', async () => {
      const out = at('vector');
      assert.equal(
        await assemble(decryptor, join(vectors, 'team.key'), join(vectors, 'v2/bucket/team_vector'), out),
        '',
      );
      const dest = await extract(out);
      for (const line of readFileSync(join(vectors, 'v2/bucket.sha256'), 'utf8').trim().split('\n')) {
        const [sum, path] = line.split('  ');
        assert.equal(
          createHash('sha256')
            .update(readFileSync(join(dest, path!)))
            .digest('hex'),
          sum,
          path,
        );
      }
    });

    it('names a damaged blob, a pack it cannot use, and the wrong key', async () => {
      const damaged = (packFile: string) => {
        const team = at(`bucket-${packFile}`);
        cpSync(join(vectors, 'v2/bucket/team_vector'), team, { recursive: true });
        const pack = join(team, 'packs/46/46abf9ad5ca5032f9f7ac962af5b3052');
        writeFileSync(pack, readFileSync(join(vectors, 'v2', packFile)));
        return team;
      };
      const key = join(vectors, 'team.key');
      assert.match(await assemble(decryptor, key, damaged('flipped.pack'), at('o1')), /blob_altered/);
      const truncated = await assemble(decryptor, key, damaged('truncated.pack'), at('o2'));
      assert.match(truncated, /skipped: truncated/);
      assert.match(truncated, /missing_chunk/);
      assert.match(
        await assemble(
          decryptor,
          join(vectors, 'other.key'),
          join(vectors, 'v2/bucket/team_vector'),
          at('o3'),
        ),
        /bad_manifest: strackt-decrypt: wrong_key/,
      );
    });

    it('restores what strackt writes: chunks of MiB over several packs, and a pack of 1,600 small ones', async () => {
      const team = generateTeamKey();
      const dedupKey = dedupKeyOf(team.secretKey);
      const teamDir = at('written');
      const big = createCipheriv('aes-128-ctr', Buffer.alloc(16, 5), Buffer.alloc(16)).update(
        Buffer.alloc(5_000_000),
      );
      const text = Buffer.from('a line of a log file\n'.repeat(200_000));
      const small = Array.from({ length: 1600 }, (_, k) => Buffer.from(`small file ${k}\n`));
      const chunker = new Chunker();
      let writer: PackWriter | undefined;
      const parts: Buffer[] = [];
      const packPaths: string[] = [];
      const flush = () => {
        if (!writer) return;
        writer.finish();
        const path = join(teamDir, packObjectKey('', '', newPackId()));
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, Buffer.concat(parts.splice(0)));
        packPaths.push(path);
        writer = undefined;
      };
      const chunked = async (data: Buffer) => {
        const ids: string[] = [];
        for await (const chunk of chunker.chunksOf(Readable.from([data]))) {
          writer ??= new PackWriter(team.publicKey, (b) => parts.push(Buffer.from(b)));
          const id = chunkIdOf(dedupKey, chunk);
          writer.add(id, chunk);
          ids.push(id.toString('hex'));
          if (writer.bytes >= 3 * 1024 * 1024) flush();
        }
        return ids;
      };
      const entry = (path: string, data: Buffer, chunks: string[]) => ({
        path,
        type: 'file' as const,
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime: 1795000000.5,
        size: data.length,
        chunks,
      });
      const files = [
        entry('vol/big.bin', big, await chunked(big)),
        entry('vol/log.txt', text, await chunked(text)),
      ];
      // A pack of 1,600 blobs: an index larger than the tool's first 64 KiB read of a pack's tail.
      const smallEntries = [];
      for (const [k, data] of small.entries())
        smallEntries.push(entry(`vol/small/${k}`, data, await chunked(data)));
      const manifest: ManifestV2 = {
        format: 'strackt-snapshot',
        formatVersion: 2,
        snapshotId: 'snap_vector',
        teamId: 'team_vector',
        environmentId: 'env_vector',
        environmentName: 'written',
        sourceServerId: 'srv_vector',
        createdAt: '2026-12-05T00:00:00.000Z',
        keyId: keyIdOf(team.publicKey).toString('hex'),
        chunking: manifestChunking,
        services: [{ name: 'app', volumes: ['vol'] }],
        volumes: [
          { name: 'vol', entries: 1604, bytes: [big, text, ...small].reduce((n, b) => n + b.length, 0) },
        ],
        entries: [
          { path: 'vol', type: 'directory', mode: 0o700, uid: 0, gid: 0, mtime: 1795000000 },
          { path: 'vol/small', type: 'directory', mode: 0o700, uid: 0, gid: 0, mtime: 1795000000 },
          ...files,
          ...smallEntries,
        ],
      };
      flush();
      const manifestPath = join(teamDir, 'env_vector/snap_vector/manifest.json.strackt');
      mkdirSync(dirname(manifestPath), { recursive: true });
      writeFileSync(manifestPath, await sealManifestV2(manifest, team.publicKey, newDataKey()));
      const keyFile = at('written.key');
      writeFileSync(keyFile, `${printableSecretKey(team.secretKey)}\n`);
      const out = at('written-out');
      assert.equal(await assemble(decryptor, keyFile, teamDir, out), '');
      const dest = await extract(out);
      assert.deepEqual(readFileSync(join(dest, 'vol/big.bin')), big);
      assert.deepEqual(readFileSync(join(dest, 'vol/log.txt')), text);
      assert.deepEqual(readFileSync(join(dest, 'vol/small/1599')), small[1599]);

      // Garbage that another server of the team sealed under big.bin's chunk ids, in a pack the kit
      // finds first (beside the real one, its name sorting before): each chunk comes from a good copy.
      const forged: Buffer[] = [];
      const forger = new PackWriter(team.publicKey, (b) => forged.push(Buffer.from(b)));
      for (const id of files[0]!.chunks) forger.add(Buffer.from(id, 'hex'), randomBytes(1000));
      forger.finish();
      writeFileSync(join(dirname(packPaths[0]!), '0'.repeat(32)), Buffer.concat(forged));
      const despiteForged = at('forged-out');
      assert.equal(await assemble(decryptor, keyFile, teamDir, despiteForged), '');
      assert.deepEqual(readFileSync(join(await extract(despiteForged), 'vol/big.bin')), big);

      // A manifest naming ids of another scheme (format 2's first: keyed BLAKE2b) is refused as such.
      const other = { ...manifest, chunking: { ...manifest.chunking, id: 'blake2b-256' } };
      writeFileSync(manifestPath, await sealManifestV2(other as ManifestV2, team.publicKey, newDataKey()));
      assert.match(
        await assemble(decryptor, keyFile, teamDir, at('other-scheme')),
        /bad_manifest: .*chunk ids of scheme 'blake2b-256', not hmac-sha256/,
      );
    });
  });
