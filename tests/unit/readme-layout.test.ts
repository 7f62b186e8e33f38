import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

// The README's layout table is a newcomer's map: a folder added without a row is where it drifts.
describe("the README's layout table", () => {
  it('lists every folder of the repository', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: repoRoot, encoding: 'utf8' }).split('\n');
    const folders = new Set(tracked.filter((f) => f.includes('/')).map((f) => f.slice(0, f.indexOf('/'))));
    const readme = readFileSync(`${repoRoot}/README.md`, 'utf8');
    const layout = readme.slice(
      readme.indexOf('## Layout'),
      readme.indexOf('\n## ', readme.indexOf('## Layout') + 1),
    );
    const missing = [...folders].filter((folder) => !layout.includes(`| \`${folder}/\``));
    assert.deepEqual(
      missing,
      [],
      `folders without a row in the README's layout table: ${missing.join(', ')}`,
    );
  });
});
