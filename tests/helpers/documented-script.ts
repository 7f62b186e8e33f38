import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './stack.ts';

/** The fenced block RESTORE-WITHOUT-STRACKT.md marks with `<!-- marker`, exactly as a customer would copy it. */
export function documentedScript(marker: string): string {
  const doc = readFileSync(join(repoRoot, 'docs/RESTORE-WITHOUT-STRACKT.md'), 'utf8');
  const at = doc.indexOf(`<!-- ${marker}:`);
  const block = /```sh\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(at > 0 && block, `the guide keeps its ${marker} block`);
  return block[1]!;
}
