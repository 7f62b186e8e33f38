import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, createReadStream, existsSync } from 'node:fs';
import {
  chown,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  symlink,
  utimes,
  writeFile,
  chmod,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { compress } from 'zstd-napi';
import { unpackArchive } from '../../format/archive-reader.ts';
import { writeArchive } from '../../format/archive-writer.ts';
import { EncryptStream } from '../../format/container-sealer.ts';
import { newDataKey } from '../../format/data-key.ts';
import { SnapshotFormatError } from '../../format/format-error.ts';
import { buildManifest, type Manifest, type ManifestEntry } from '../../format/manifest.ts';
import { generateTeamKey, keyIdOf } from '../../format/team-key.ts';
import { craftTar, type CraftedEntry } from '../helpers/craft-tar.ts';
import { stack } from '../helpers/stack.ts';

const team = generateTeamKey();

function manifestFor(entries: ManifestEntry[], volumes: string[], tarBytes: number): Manifest {
  return buildManifest(
    {
      snapshotId: 'snap_test',
      teamId: 'team_test',
      environmentId: 'env_test',
      environmentName: 'test',
      sourceServerId: 'srv_test',
      createdAt: new Date().toISOString(),
      keyId: keyIdOf(team.publicKey).toString('hex'),
      services: [{ name: 'svc', volumes }],
    },
    { entries, tarBytes },
  );
}

/** Everything a restore must bring back, per path: type, mode, owner, mtime (to the millisecond: a double in seconds loses the last microsecond now and then), content or link target. */
async function describeTree(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const us = (ms: number) => Math.round(ms);
  for (const name of (await readdir(join(root, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(root, path));
    const common = `mode=${(st.mode & 0o7777).toString(8)} owner=${st.uid}:${st.gid}`;
    if (st.isSymbolicLink())
      out[path] =
        `symlink->${await readlink(join(root, path))} owner=${st.uid}:${st.gid} mtime=${us(st.mtimeMs)}`;
    else if (st.isDirectory()) {
      out[path] = `dir ${common} mtime=${us(st.mtimeMs)}`;
      Object.assign(out, await describeTree(root, path));
    } else {
      const sha = createHash('sha256')
        .update(await readFile(join(root, path)))
        .digest('hex');
      out[path] = `file ${common} mtime=${us(st.mtimeMs)} links=${st.nlink} sha=${sha}`;
    }
  }
  return out;
}

async function sampleVolumes(): Promise<string> {
  const root = await mkdtemp(join(stack.runDir, 'vol-'));
  const a = join(root, 'alpha');
  const longDir = join(a, 'd'.repeat(90), 'e'.repeat(90));
  await mkdir(longDir, { recursive: true });
  await mkdir(join(a, 'empty'));
  await mkdir(join(root, 'beta', 'nested'), { recursive: true });
  await writeFile(join(longDir, `${'f'.repeat(120)}.txt`), 'a file under a long path');
  await writeFile(join(a, 'big.bin'), randomBytes(3 * 1024 * 1024 + 7));
  await writeFile(join(a, 'zero'), '');
  await writeFile(join(a, 'secret'), 'mode 600');
  await chmod(join(a, 'secret'), 0o600);
  await writeFile(join(a, 'tool'), '#!/bin/sh\n');
  await chmod(join(a, 'tool'), 0o755);
  await chown(join(a, 'tool'), 101, 104);
  await symlink('big.bin', join(a, 'link-to-big'));
  await symlink('../alpha/zero', join(a, 'empty', 'up-and-back'));
  await link(join(a, 'big.bin'), join(a, 'hard-big'));
  await writeFile(join(root, 'beta', 'nested', 'x'), 'x');
  await utimes(join(a, 'zero'), 1_600_000_000.5, 1_600_000_000.5);
  return root;
}

describe('archive writer and reader', () => {
  it('round-trips a tree: content, modes, owners, mtimes, symlinks, hard links, empty dirs, long names', async () => {
    const root = await sampleVolumes();
    const file = join(stack.runDir, `snap-${randomBytes(4).toString('hex')}`);
    const dataKey = newDataKey();
    const { entries, tarBytes } = await writeArchive({
      root,
      volumes: ['alpha', 'beta'],
      publicKey: team.publicKey,
      dataKey,
      sink: createWriteStream(file),
    });
    assert.ok(entries.some((e) => e.type === 'hardlink' && e.target === 'alpha/big.bin'));
    const manifest = manifestFor(entries, ['alpha', 'beta'], tarBytes);
    const staging = join(stack.runDir, `staging-${randomBytes(4).toString('hex')}`);
    const result = await unpackArchive({
      source: createReadStream(file),
      key: { secretKey: team.secretKey },
      manifest,
      staging,
    });
    assert.equal(result.entries, entries.length);
    assert.deepEqual(await describeTree(staging), await describeTree(root));
  });

  it('verifies without writing: every file hashed against the manifest, no staging made, a flipped byte caught', async () => {
    const root = await sampleVolumes();
    const file = join(stack.runDir, `snap-${randomBytes(4).toString('hex')}`);
    const { entries, tarBytes } = await writeArchive({
      root,
      volumes: ['alpha', 'beta'],
      publicKey: team.publicKey,
      dataKey: newDataKey(),
      sink: createWriteStream(file),
    });
    const manifest = manifestFor(entries, ['alpha', 'beta'], tarBytes);
    const staging = join(stack.runDir, `never-${randomBytes(4).toString('hex')}`);
    const verify = (source: AsyncIterable<Buffer>, m = manifest) =>
      unpackArchive({ source, key: { secretKey: team.secretKey }, manifest: m, staging, verifyOnly: true });
    const result = await verify(createReadStream(file));
    assert.equal(result.entries, entries.length);
    assert.equal(existsSync(staging), false, 'nothing was written');
    const big = manifest.entries.findIndex((e) => e.type === 'file' && (e.size ?? 0) > 0);
    const altered = {
      ...manifest,
      entries: manifest.entries.map((e, i) => (i === big ? { ...e, sha256: '0'.repeat(64) } : e)),
    };
    await assert.rejects(verify(createReadStream(file), altered), /SHA-256 differs from the manifest/);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await assert.rejects(
      verify(
        (async function* () {
          yield bytes;
        })(),
      ),
      SnapshotFormatError,
    );
    assert.equal(existsSync(staging), false, 'nothing was written by a failed verification either');
  });

  it('resumes an interrupted unpack after its checkpoint: the same tree, nothing before it written again', async () => {
    const root = await mkdtemp(join(stack.runDir, 'vol-'));
    await mkdir(join(root, 'v'));
    for (let i = 0; i < 12; i++) await writeFile(join(root, 'v', `f${i}.bin`), randomBytes(1024 * 1024));
    const file = join(stack.runDir, `snap-${randomBytes(4).toString('hex')}`);
    const { entries, tarBytes } = await writeArchive({
      root,
      volumes: ['v'],
      publicKey: team.publicKey,
      dataKey: newDataKey(),
      sink: createWriteStream(file),
    });
    const manifest = manifestFor(entries, ['v'], tarBytes);
    const staging = join(stack.runDir, `staging-${randomBytes(4).toString('hex')}`);
    const stored = await readFile(file);
    // The connection drops half-way: the source fails, staging stays for a retry.
    const cut = (async function* () {
      for (let at = 0; at < stored.length >> 1; at += 64 * 1024) {
        yield stored.subarray(at, Math.min(at + 64 * 1024, stored.length >> 1));
        await new Promise((r) => setTimeout(r, 2)); // as a network would: the threads keep up
      }
      throw new Error('connection reset');
    })();
    let checkpoint = 0;
    await assert.rejects(
      unpackArchive({
        source: cut,
        key: { secretKey: team.secretKey },
        manifest,
        staging,
        keepStagingOnFailure: true,
        onCheckpoint: (n) => (checkpoint = n),
      }),
      /connection reset/,
    );
    assert.ok(checkpoint > 1 && checkpoint < entries.length, `checkpoint ${checkpoint} of ${entries.length}`);
    const done = entries[checkpoint - 1]!.path;
    const before = await lstat(join(staging, done));

    const result = await unpackArchive({
      source: createReadStream(file),
      key: { secretKey: team.secretKey },
      manifest,
      staging,
      resume: { entriesDone: checkpoint },
    });
    assert.equal(result.entries, entries.length);
    assert.deepEqual(await describeTree(staging), await describeTree(root));
    const after = await lstat(join(staging, done));
    assert.equal(after.ino, before.ino, `${done}, verified before the cut, was not written again`);
    assert.equal(after.ctimeMs, before.ctimeMs);
  });

  it('refuses to back up a FIFO, naming it', async () => {
    const root = await mkdtemp(join(stack.runDir, 'vol-'));
    await mkdir(join(root, 'v'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(root, 'v', 'pipe')]);
    await assert.rejects(
      writeArchive({
        root,
        volumes: ['v'],
        publicKey: team.publicKey,
        dataKey: newDataKey(),
        sink: createWriteStream('/dev/null'),
      }),
      /cannot back up v\/pipe: it is a FIFO/,
    );
  });
});

describe('unpacking hostile archives', () => {
  const file = (path: string, data = 'x', extra: Partial<CraftedEntry> = {}): CraftedEntry => ({
    path,
    data: Buffer.from(data),
    ...extra,
  });
  const sha = (data: string) => createHash('sha256').update(data).digest('hex');

  /** The manifest a forger would write alongside: exactly what the archive holds. */
  function honestManifest(entries: CraftedEntry[]): Manifest {
    return manifestFor(
      entries.map((e) => {
        const type =
          ({ '0': 'file', '1': 'hardlink', '2': 'symlink', '5': 'directory' } as const)[e.typeflag ?? '0'] ??
          'file';
        const path = e.path.replace(/\/+$/, '');
        const base = { path, type, mode: (e.mode ?? 0o644) & 0o7777, uid: 0, gid: 0, mtime: 1_700_000_000 };
        return type === 'file'
          ? { ...base, size: e.data?.length ?? 0, sha256: sha(e.data?.toString() ?? '') }
          : type === 'directory'
            ? base
            : { ...base, target: e.linkTarget };
      }),
      ['v'],
      0,
    );
  }

  async function attempt(
    entries: CraftedEntry[],
    manifest = honestManifest(entries),
  ): Promise<{ error: Error; staging: string }> {
    const tar = craftTar(entries);
    const sealed = await buffer(
      Readable.from([compress(tar)]).pipe(
        new EncryptStream({ publicKey: team.publicKey, dataKey: newDataKey(), compression: 'zstd' }),
      ),
    );
    const staging = join(stack.runDir, `staging-${randomBytes(4).toString('hex')}`);
    const error = await unpackArchive({
      source: Readable.from([sealed]),
      key: { secretKey: team.secretKey },
      manifest,
      staging,
    }).then(
      () => assert.fail('the archive was accepted'),
      (err: Error) => err,
    );
    assert.equal(existsSync(staging), false, 'a refused archive leaves nothing behind');
    return { error, staging };
  }

  const dir = (path: string): CraftedEntry => ({ path, typeflag: '5', mode: 0o755 });

  const cases: [string, CraftedEntry[], RegExp][] = [
    ['an absolute path', [dir('v/'), file('/etc/evil')], /"\/etc\/evil": absolute path/],
    ['a ".." component', [dir('v/'), file('v/../../evil')], /"v\/..\/..\/evil": ".." in the path/],
    ['a path outside any volume', [dir('v/'), file('other/x')], /"other\/x": not inside a volume/],
    [
      'a symlink to an absolute path',
      [dir('v/'), { path: 'v/l', typeflag: '2', linkTarget: '/etc/passwd', mode: 0o777 }],
      /"v\/l": symbolic link to absolute path/,
    ],
    [
      'a symlink climbing out',
      [dir('v/'), { path: 'v/l', typeflag: '2', linkTarget: '../../x', mode: 0o777 }],
      /"v\/l": symbolic link pointing outside its volume/,
    ],
    [
      'a write through a symlink',
      [dir('v/'), { path: 'v/l', typeflag: '2', linkTarget: '.', mode: 0o777 }, file('v/l/x')],
      /"v\/l\/x": its path goes through a symbolic link/,
    ],
    [
      'a hard link outside',
      [dir('v/'), { path: 'v/h', typeflag: '1', linkTarget: '/etc/shadow' }],
      /"v\/h": hard link to "\/etc\/shadow"/,
    ],
    [
      'a character device',
      [dir('v/'), { path: 'v/dev', typeflag: '3' }],
      /"v\/dev": a character device is never restored/,
    ],
    [
      'a block device',
      [dir('v/'), { path: 'v/blk', typeflag: '4' }],
      /"v\/blk": a block device is never restored/,
    ],
    ['a FIFO', [dir('v/'), { path: 'v/fifo', typeflag: '6' }], /"v\/fifo": a FIFO is never restored/],
    ['a setuid file', [dir('v/'), file('v/suid', 'x', { mode: 0o4755 })], /"v\/suid": setuid or setgid bit/],
    [
      'a setgid directory',
      [dir('v/'), { path: 'v/sg', typeflag: '5', mode: 0o2755 }],
      /"v\/sg": setuid or setgid bit/,
    ],
    [
      'entries colliding',
      [dir('v/'), file('v/a'), file('v/a', 'y')],
      /"v\/a": collides with an earlier entry/,
    ],
    [
      'entries colliding after Unicode normalisation',
      [dir('v/'), file('v/caf\u00e9'), file('v/cafe\u0301')],
      /collides with an earlier entry/,
    ],
    ['an empty path component', [dir('v/'), file('v//a')], /"v\/\/a": empty or "." path component/],
    // Each target reads as inside v; the kernel resolves ".." after v/l1 from where v/l1 points (v's parent).
    [
      'a link leading out through a link declared after it',
      [
        dir('v/'),
        dir('v/sub/'),
        { path: 'v/sub/esc', typeflag: '2', linkTarget: '../l1/..', mode: 0o777 },
        { path: 'v/l1', typeflag: '2', linkTarget: '../v', mode: 0o777 },
      ],
      /"v\/sub\/esc": symbolic link leading outside its volume/,
    ],
    [
      'a link leading out through a link declared before it',
      [
        dir('v/'),
        dir('v/d/'),
        { path: 'v/d/l1', typeflag: '2', linkTarget: '../../v/d', mode: 0o777 },
        { path: 'v/esc', typeflag: '2', linkTarget: 'd/l1/..', mode: 0o777 },
      ],
      /"v\/d\/l1": symbolic link leading outside its volume/,
    ],
    [
      'symbolic links in a loop',
      [
        dir('v/'),
        { path: 'v/a', typeflag: '2', linkTarget: 'b', mode: 0o777 },
        { path: 'v/b', typeflag: '2', linkTarget: 'a', mode: 0o777 },
      ],
      /"v\/a": symbolic links in a loop/,
    ],
  ];
  for (const [what, entries, expected] of cases) {
    it(`refuses ${what}, naming the entry`, async () => {
      const { error } = await attempt(entries);
      assert.match(error.message, expected);
    });
  }

  it('refuses entries or bytes the manifest does not declare, and content that differs from it', async () => {
    const entries = [dir('v/'), file('v/a', 'hello')];
    const manifest = honestManifest(entries);
    assert.match(
      (await attempt([...entries, file('v/b')], manifest)).error.message,
      /"v\/b": more entries than the manifest declares/,
    );
    assert.match(
      (await attempt([dir('v/'), file('v/a', 'hellO')], manifest)).error.message,
      /"v\/a": SHA-256 differs from the manifest/,
    );
    assert.match(
      (await attempt([dir('v/'), file('v/a', 'hello!')], manifest)).error.message,
      /"v\/a": size differs from the manifest/,
    );
    assert.match(
      (await attempt([dir('v/')], manifest)).error.message,
      /"v\/a": declared by the manifest but missing/,
    );
  });
});
