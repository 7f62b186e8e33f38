import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { EncryptStream, newDataKey } from '../../format/container.ts';
import { fingerprintOf, generateTeamKey, printableSecretKey } from '../../format/team-key.ts';
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
