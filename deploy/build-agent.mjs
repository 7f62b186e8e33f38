// Builds the agent as it runs on customers' servers: one JavaScript file (.build/agent/agent.mjs)
// beside the worker threads it starts, and the command that runs it (.build/agent/strackt-agent).
// Not through tsx: compiling TypeScript at start cost ~60 MiB of the agent's memory budget
// (measured idle: 188 MiB through tsx, 128 MiB built).
import { build } from 'esbuild';
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.build', 'agent');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(root, 'worker', 'agent.main.ts')],
  outfile: join(out, 'agent.mjs'),
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
// Started by URL relative to the module that starts them, which is now agent.mjs.
for (const thread of ['tar-reader.js', 'hash-worker.js', 'unpack-writer.js'])
  await copyFile(join(root, 'format', thread), join(out, thread));

// The agent's memory budget is 250 MiB whatever the snapshot's size. Three settings keep backups
// inside it (1 GiB, several in a row; peak RSS measured 236-268 MiB without them, 196-212 with):
// - glibc's mmap threshold fixed at 128 KiB: by default it rises to the size of the biggest block
//   freed, after which the 1 MiB read and write buffers came from the main heap, which fragmented
//   and kept ~40 MiB more after every backup;
// - glibc's malloc arenas capped at two (each thread that allocates, zstd's workers among them,
//   would otherwise keep an arena of its own);
// - V8's young generation capped at 2 MiB semi-spaces (the hot path's buffers live outside the
//   JavaScript heap).
const launcher = `#!/bin/sh
export MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-2} MALLOC_MMAP_THRESHOLD_=\${MALLOC_MMAP_THRESHOLD_:-131072}
exec node --max-semi-space-size=2 "$(dirname "$0")/agent.mjs" "$@"
`;
await writeFile(join(out, 'strackt-agent'), launcher);
await chmod(join(out, 'strackt-agent'), 0o755);
