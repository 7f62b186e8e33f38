import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { EncryptStream } from '../../format/container-sealer.ts';
import { newDataKey } from '../../format/data-key.ts';
import { fingerprintOf, generateTeamKey, printableSecretKey } from '../../format/team-key.ts';
import { craftTar, type CraftedEntry } from '../helpers/craft-tar.ts';
import { repoRoot, stack, uniqueName } from '../helpers/stack.ts';

// The restore kit must read snapshots with no strackt code: each tool runs as a customer would run it.
const work = join(stack.runDir, uniqueName('restore-kit'));
const tools: { name: string; command: [string, ...string[]] }[] = [
  { name: 'Python', command: ['/usr/bin/python3', join(repoRoot, 'restore-kit/strackt-decrypt.py')] },
  { name: 'C', command: [join(work, 'strackt-decrypt')] },
];
const vector = (name: string) => join(repoRoot, 'docs/test-vectors', name);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const big = {
  container: join(work, 'big.strackt'),
  keyFile: join(work, 'big.key'),
  sha256: '',
  fingerprint: '',
};
const typoKeyFile = join(work, 'typo.key');

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

async function run(command: string[], args: string[], stdinFile?: string): Promise<Run> {
  const child = spawn(command[0]!, [...command.slice(1), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  // A tool that fails early closes its end of the pipe; that failure is what the test looks at.
  child.stdin.on('error', () => {});
  if (stdinFile) createReadStream(stdinFile).pipe(child.stdin);
  else child.stdin.end();
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => stdout.push(d));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const status = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  return { status, stdout: Buffer.concat(stdout), stderr };
}

async function decryptOk(command: string[], args: string[], stdinFile?: string): Promise<Buffer> {
  const result = await run(command, args, stdinFile);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '');
  return result.stdout;
}

function assertFailure(result: Run, kind: string, what: string): void {
  assert.equal(result.status, 1, `${what}: exit status (stderr: ${result.stderr})`);
  assert.match(result.stderr, new RegExp(`^strackt-decrypt: ${kind}: [^\\n]+\\n$`), what);
}

before(async () => {
  await mkdir(work, { recursive: true });
  await promisify(execFile)('cc', [
    '-O2',
    '-o',
    join(work, 'strackt-decrypt'),
    join(repoRoot, 'restore-kit/strackt-decrypt.c'),
    '-lsodium',
  ]);
  const printed = (await readFile(vector('team.key'), 'utf8')).trim();
  await writeFile(
    typoKeyFile,
    `${printed.slice(0, 10)}${printed[10] === 'A' ? 'B' : 'A'}${printed.slice(11)}\n`,
  );

  // Not a whole number of 1 MiB chunks, so the final chunk is a short one.
  const plain = randomBytes(20 * 1024 * 1024 + 4321);
  const team = generateTeamKey();
  big.sha256 = sha256(plain);
  big.fingerprint = fingerprintOf(team.publicKey);
  await writeFile(big.keyFile, `${printableSecretKey(team.secretKey)}\n`);
  await pipeline(
    Readable.from([plain]),
    new EncryptStream({ publicKey: team.publicKey, dataKey: newDataKey(), compression: 'none' }),
    createWriteStream(big.container),
  );
});

for (const tool of tools) {
  describe(`restore kit, ${tool.name} tool`, () => {
    const teamKey = ['--key-file', vector('team.key')];

    it('decrypts the hello, empty and multi-chunk test vectors', async () => {
      assert.deepEqual(
        await decryptOk(tool.command, [...teamKey, vector('hello.strackt')]),
        await readFile(vector('hello.txt')),
      );
      assert.equal((await decryptOk(tool.command, [...teamKey, vector('empty.strackt')])).length, 0);
      assert.equal(
        sha256(await decryptOk(tool.command, [...teamKey, vector('multi.strackt')])),
        (await readFile(vector('multi.sha256'), 'utf8')).trim(),
      );
    });

    it('reads the container from standard input', async () => {
      assert.deepEqual(
        await decryptOk(tool.command, teamKey, vector('hello.strackt')),
        await readFile(vector('hello.txt')),
      );
      assert.deepEqual(
        await decryptOk(tool.command, [...teamKey, '-'], vector('hello.strackt')),
        await readFile(vector('hello.txt')),
      );
    });

    it('prints the fingerprint of the key file as FORMAT.md defines it', async () => {
      const printed = await decryptOk(tool.command, ['--fingerprint', ...teamKey]);
      assert.equal(printed.toString(), await readFile(vector('team.fingerprint'), 'utf8'));
      const fresh = await decryptOk(tool.command, ['--fingerprint', '--key-file', big.keyFile]);
      assert.equal(fresh.toString(), `${big.fingerprint}\n`);
    });

    it('reports each tampered test vector as its expected error, with exit status 1', async () => {
      const expected = JSON.parse(await readFile(vector('expected-errors.json'), 'utf8')) as Record<
        string,
        string
      >;
      for (const [what, kind] of Object.entries(expected)) {
        const [file, , keyFile = 'team.key'] = what.split(' ');
        const result = await run(tool.command, ['--key-file', vector(keyFile), vector(file!)]);
        assertFailure(result, kind, what);
        // Nothing of the payload may come out when the header or the key is at fault.
        if (kind === 'wrong_key' || kind === 'header_altered') assert.equal(result.stdout.length, 0, what);
      }
    });

    it('refuses a key file with a typo as bad_key', async () => {
      const typo = await run(tool.command, ['--key-file', typoKeyFile, vector('hello.strackt')]);
      assertFailure(typo, 'bad_key', 'a typo in the key');
      assert.match(typo.stderr, /typo/);
      assert.equal(typo.stdout.length, 0);
      assertFailure(
        await run(tool.command, ['--fingerprint', '--key-file', typoKeyFile]),
        'bad_key',
        'fingerprint',
      );
      const notAKey = await run(tool.command, ['--key-file', vector('hello.txt'), vector('hello.strackt')]);
      assertFailure(notAKey, 'bad_key', 'not a key');
    });

    it('decrypts a 20 MB snapshot from a file, byte for byte', async () => {
      const plain = await decryptOk(tool.command, ['--key-file', big.keyFile, big.container]);
      assert.equal(plain.length, 20 * 1024 * 1024 + 4321);
      assert.equal(sha256(plain), big.sha256);
    });

    it('streams: output starts before the input has ended', async () => {
      const container = await readFile(big.container);
      const [command, ...pre] = tool.command;
      const child = spawn(command, [...pre, '--key-file', big.keyFile], { stdio: ['pipe', 'pipe', 'pipe'] });
      const hash = createHash('sha256');
      let bytes = 0;
      let stderr = '';
      const firstOutput = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      child.stdout.on('data', (d: Buffer) => (hash.update(d), (bytes += d.length)));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((resolve) => child.once('close', resolve));

      const half = Math.floor(container.length / 2);
      child.stdin.write(container.subarray(0, half));
      // A tool that reads all of its input first would wait forever for the rest: fail, not hang.
      const timer = setTimeout(() => child.kill(), 30_000);
      await Promise.race([
        firstOutput,
        closed.then((status) => assert.fail(`no output before the input ended (exit ${status}): ${stderr}`)),
      ]);
      clearTimeout(timer);
      child.stdin.end(container.subarray(half));
      assert.equal(await closed, 0, stderr);
      assert.equal(bytes, 20 * 1024 * 1024 + 4321);
      assert.equal(hash.digest('hex'), big.sha256);
    });
  });
}

describe('strackt-extract: a forged archive is refused before anything is written', () => {
  const extractor = ['/usr/bin/python3', join(repoRoot, 'restore-kit/strackt-extract.py')];
  const sha = (data: string) => createHash('sha256').update(data).digest('hex');
  const file = (path: string, data = 'x', mode = 0o644): CraftedEntry => ({
    path,
    data: Buffer.from(data),
    mode,
  });
  const dir = (path: string): CraftedEntry => ({ path, typeflag: '5', mode: 0o755 });
  const link = (path: string, target: string): CraftedEntry => ({
    path,
    typeflag: '2',
    linkTarget: target,
    mode: 0o777,
  });

  /** The manifest a forger would write beside it: exactly what the archive holds. */
  function manifestOf(entries: CraftedEntry[]) {
    return {
      format: 'strackt-snapshot',
      formatVersion: 1,
      volumes: [{ name: 'v', entries: entries.length, bytes: 0 }],
      entries: entries.map((e) => {
        const type =
          ({ '0': 'file', '2': 'symlink', '5': 'directory' } as const)[e.typeflag ?? '0'] ?? 'file';
        const base = {
          path: e.path.replace(/\/+$/, ''),
          type,
          mode: (e.mode ?? 0o644) & 0o7777,
          uid: 0,
          gid: 0,
          mtime: 1_700_000_000,
        };
        if (type === 'file')
          return { ...base, size: e.data?.length ?? 0, sha256: sha(e.data?.toString() ?? '') };
        return type === 'symlink' ? { ...base, target: e.linkTarget } : base;
      }),
    };
  }

  async function extract(entries: CraftedEntry[], manifest: unknown = manifestOf(entries)) {
    const at = join(work, uniqueName('extract'));
    await mkdir(at, { recursive: true });
    await writeFile(join(at, 'snapshot.tar'), craftTar(entries));
    await writeFile(join(at, 'manifest.json'), JSON.stringify(manifest));
    const dest = join(at, 'restored');
    const result = await run(extractor, [
      '--manifest',
      join(at, 'manifest.json'),
      join(at, 'snapshot.tar'),
      dest,
    ]);
    return { ...result, dest };
  }

  it('unpacks an honest archive as its manifest says', async () => {
    const entries = [dir('v/'), dir('v/d/'), file('v/d/a.txt', 'hello', 0o640), link('v/to-a', 'd/a.txt')];
    const { status, stderr, dest } = await extract(entries);
    assert.equal(status, 0, stderr);
    assert.equal(await readFile(join(dest, 'v/to-a'), 'utf8'), 'hello');
    assert.equal((await stat(join(dest, 'v/d/a.txt'))).mode & 0o7777, 0o640);
  });

  const forged: [string, CraftedEntry[], RegExp][] = [
    [
      'a link leading out through a later link',
      [dir('v/'), dir('v/sub/'), link('v/sub/esc', '../l1/..'), link('v/l1', '../v')],
      /refused: "v\/sub\/esc": symbolic link leading outside its volume/,
    ],
    [
      'a symlink climbing out',
      [dir('v/'), link('v/l', '../../etc')],
      /refused: .*leading outside its volume/,
    ],
    [
      'a write through a symlink',
      [dir('v/'), link('v/l', '.'), file('v/l/x')],
      /refused: "v\/l\/x": its path goes through a symbolic link/,
    ],
    ['a setuid file', [dir('v/'), file('v/suid', 'x', 0o4755)], /refused: "v\/suid": setuid or setgid bit/],
    ['a device', [dir('v/'), { path: 'v/dev', typeflag: '3' }], /refused: "v\/dev": a device/],
    [
      'an absolute path',
      [dir('v/'), file('/etc/cron.d/evil')],
      /refused: "\/etc\/cron.d\/evil": absolute path/,
    ],
    ['a path outside the volumes', [dir('v/'), file('w/x')], /refused: "w\/x": not inside a volume/],
  ];
  for (const [what, entries, expected] of forged) {
    it(`refuses ${what}, writing nothing`, async () => {
      const { status, stderr, dest } = await extract(entries);
      assert.equal(status, 1);
      assert.match(stderr, expected);
      assert.equal(existsSync(dest), false, 'no restore folder made');
    });
  }

  it('refuses content that differs from the manifest, and a non-empty destination', async () => {
    const entries = [dir('v/'), file('v/a', 'good')];
    const lying = manifestOf([dir('v/'), file('v/a', 'else')]);
    const { status, stderr, dest } = await extract(entries, lying);
    assert.equal(status, 1);
    assert.match(stderr, /mismatch: "v\/a": size 4|mismatch: "v\/a": its content/);
    assert.equal(existsSync(dest), false);
    const at = join(work, uniqueName('busy'));
    await mkdir(join(at, 'restored'), { recursive: true });
    await writeFile(join(at, 'restored', 'x'), 'x');
    await writeFile(join(at, 'snapshot.tar'), craftTar(entries));
    await writeFile(join(at, 'manifest.json'), JSON.stringify(manifestOf(entries)));
    const busy = await run(extractor, [
      '--manifest',
      join(at, 'manifest.json'),
      join(at, 'snapshot.tar'),
      join(at, 'restored'),
    ]);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, /bad_destination/);
  });
});
