import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, it } from 'node:test';
import { logLines } from '../helpers/log-lines.ts';

const dir = mkdtempSync(join(tmpdir(), 'log-stdout-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const stalledSeconds = 4;
// Lines of a write that was under way when the program exited (at most 64 KiB: 63 of these lines)
// may be lost, never doubled.
const inDoubt = 63;

/**
 * A program that logs `lines` lines of about 1 KiB to a stdout whose reader sleeps first, then marks
 * a file from a timer (which runs only if logging left its event loop free) and exits. Resolves with
 * the marker's presence while the reader still slept, and everything the program wrote.
 */
async function logWhileStalled(lines: number, marker: string): Promise<{ alive: boolean; output: string }> {
  const script = `
    import { writeFileSync } from 'node:fs';
    import { createLogger } from './common/log.ts';
    const log = createLogger('test');
    for (let i = 0; i < ${lines}; i++) log.info({ i, pad: 'x'.repeat(1000) }, 'line');
    setTimeout(() => { writeFileSync(${JSON.stringify(marker)}, 'alive'); process.exit(0); }, 10);`;
  const program = '"$NODE" --import tsx --input-type=module -e "$SCRIPT"';
  const child = spawn('bash', ['-c', `${program} | { sleep ${stalledSeconds}; cat; }`], {
    cwd: join(import.meta.dirname, '..', '..'),
    // Not this test's environment: node --test's variables would make the program a test file too.
    env: { PATH: process.env.PATH, NODE: process.execPath, SCRIPT: script },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const closed = new Promise((resolve) => child.once('close', resolve));
  for (let waited = 0; !existsSync(marker) && waited < (stalledSeconds - 1) * 1000; waited += 100)
    await sleep(100);
  const alive = existsSync(marker);
  await closed;
  return { alive, output };
}

it('goes on working while nobody reads its stdout, and writes every line once it is read', async () => {
  // 2 MB: thirty times what a pipe holds
  const { alive, output } = await logWhileStalled(2000, join(dir, 'alive-1'));
  assert.ok(alive, 'the program stopped while its stdout was full');
  const seen = logLines(output).map((l) => l.i as number);
  assert.deepEqual(
    seen,
    [...seen].sort((x, y) => x - y),
    'out of order',
  );
  assert.equal(new Set(seen).size, seen.length, 'a line written twice');
  assert.ok(seen.length >= 2000 - inDoubt, `${2000 - seen.length} lines lost`);
});

it('drops lines past its bound while stdout is not read, and says how many', async () => {
  // 12 MB, past the 8 MiB it holds
  const { alive, output } = await logWhileStalled(12_000, join(dir, 'alive-2'));
  assert.ok(alive, 'the program stopped while its stdout was full');
  const lines = logLines(output);
  const dropped = lines.find((l) => /log lines dropped/.test(l.msg));
  assert.ok(dropped, 'no line says lines were dropped');
  const count = Number(/^(\d+)/.exec(dropped.msg)![1]);
  assert.ok(
    lines.length - 1 + count >= 12_000 - inDoubt,
    `${12_000 - (lines.length - 1 + count)} lines unaccounted for`,
  );
});
