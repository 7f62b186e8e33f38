import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/stack.ts';

// ensure_node (deploy/lib.sh), as every script runs it first, on a PATH whose first node is a stand-in
// that reports a version: the pinned release (deploy/node-version, installed once per machine by
// deploy/node.sh) must replace an older major for all that follows, npm included, and a machine's
// Node.js of that major or newer must be kept.
describe('ensure_node', () => {
  let fakeDir: string;
  let pinned: string;
  let installed: string;

  before(async () => {
    fakeDir = await mkdtemp(join(tmpdir(), 'strackt-fake-node-'));
    pinned = /^version (\S+)$/m.exec(await readFile(join(repoRoot, 'deploy', 'node-version'), 'utf8'))![1]!;
    // Installs it if this machine has not yet (a download of about 55 MiB), else only prints its folder.
    installed = execFileSync('bash', [join(repoRoot, 'deploy', 'node.sh')], { encoding: 'utf8' }).trim();
  });
  after(() => rm(fakeDir, { recursive: true, force: true }));

  /** Runs ensure_node with a node first on PATH that reports `version`; what is on PATH after it. */
  async function afterEnsureNode(version: string) {
    await writeFile(join(fakeDir, 'node'), `#!/bin/sh\necho ${version}\n`, { mode: 0o755 });
    // npm's node: `npm version` lists the versions of what it runs on.
    const script = `source "$1/deploy/lib.sh"; ensure_node; command -v node; node --version
      if [ "$(command -v node)" != "$2/node" ]; then cd "$2" && npm version --json; fi`;
    const out = execFileSync('bash', ['-c', script, 'bash', repoRoot, fakeDir], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${fakeDir}:${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [path, nodeVersion, ...npm] = out.split('\n');
    return { path, nodeVersion, npmNode: npm.length > 1 ? JSON.parse(npm.join('\n')).node : undefined };
  }

  it('puts the pinned release first on PATH, for npm too, when the machine has an older major', async () => {
    const major = Number(pinned.split('.')[0]);
    for (const old of ['20.20.2', `${major - 1}.99.0`]) {
      const seen = await afterEnsureNode(old);
      assert.deepEqual(
        seen,
        { path: join(installed, 'bin', 'node'), nodeVersion: `v${pinned}`, npmNode: pinned },
        old,
      );
    }
  });

  it("keeps the machine's Node.js when it is of the pinned major or newer", async () => {
    const major = Number(pinned.split('.')[0]);
    for (const own of [`${major}.0.0`, `${major + 1}.1.0`]) {
      const seen = await afterEnsureNode(own);
      assert.deepEqual(seen, { path: join(fakeDir, 'node'), nodeVersion: own, npmNode: undefined }, own);
    }
  });
});
