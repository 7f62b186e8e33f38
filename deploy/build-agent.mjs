// Builds the agent as it runs on customers' servers: one JavaScript file (agent.mjs) beside the
// worker threads it starts, and the command that runs it (strackt-agent). Run as a script, it makes
// the development build in .build/agent, which takes its native addons from the repo's node_modules
// and runs on the node on PATH; package-agent.mjs makes the self-contained one from the same function.
// Not through tsx: compiling TypeScript at start cost ~60 MiB of the agent's memory budget
// (measured idle: 188 MiB through tsx, 128 MiB built).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { argv, execPath } from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Packages with compiled code: they load their .node file from their own folder, so they stay
 * outside the bundle. zstd-napi is reached through createRequire, which esbuild does not follow.
 */
export const nativeAddons = ['sodium-native', 'zstd-napi'];

/**
 * Node's built-in modules as CommonJS (process.getBuiltinModule), not ES module imports: to build an
 * import's namespace Node 26 reads every export, lazy ones included, and node:http's WebSocket
 * export loads all of undici with http2, zlib and web streams, code the agent never runs (it calls
 * no fetch: agent/http-request.ts). Measured: `import 'node:http'` alone 62 MiB of RSS, 46 this
 * way; the idle agent 75 MiB this way, 79 imported.
 */
const builtinsAsCommonJs = {
  name: 'builtins-as-commonjs',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, ({ path }) => ({ path, namespace: 'builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'builtin' }, ({ path }) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(path)});`,
    }));
  },
};

/**
 * libsodium (sodium-native) for the agent: loaded at its first use, as zstd is (format/zstd-binding.ts),
 * so an agent with nothing to seal or open does not hold it (3.5 MiB of idle RSS); its own key pair is
 * made with Node's crypto (format/team-key.ts). Loaded, then, straight from its prebuilt binary: the
 * package's entry finds it through require-addon, which loads eleven more modules to resolve one path;
 * the entry remains the fallback, for a platform whose binary is elsewhere (musl).
 */
const sodiumAtFirstUse = {
  name: 'sodium-at-first-use',
  setup(build) {
    build.onResolve({ filter: /^sodium-native$/ }, ({ path }) => ({ path, namespace: 'addon' }));
    build.onLoad({ filter: /.*/, namespace: 'addon' }, () => ({
      contents: `let binding;
function sodium() {
  if (binding) return binding;
  const load = process.getBuiltinModule('node:module').createRequire(import.meta.url);
  try {
    binding = load(\`sodium-native/prebuilds/\${process.platform}-\${process.arch}/sodium-native.node\`);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    binding = load('sodium-native');
  }
  return binding;
}
export default new Proxy({}, { get: (_, name) => sodium()[name] });`,
    }));
  },
};

/** V8's young generation capped at 2 MiB semi-spaces: why, by the launcher below. */
const nodeFlags = ['--max-semi-space-size=2'];

/** The Node.js major the agent runs on (the scripts' and the package's, deploy/node-version). */
const nodeMajor = /^version (\d+)\./m.exec(readFileSync(join(root, 'deploy', 'node-version'), 'utf8'))[1];

/**
 * Builds into `out`: every JavaScript dependency goes into the bundle, only the native addons stay
 * outside, so the agent tests run is the one shipped; a package loaded from node_modules also cost
 * 3 MiB more idle RSS, mostly V8's optimising compilers warmed by resolving zod's hundred files.
 * selfContained: the launcher runs the node in `out`/node instead of the one on PATH. `node`: the
 * Node.js the agent will run on, which makes its code cache. Returns esbuild's metafile: what went
 * into the bundle and what it still imports.
 */
export async function buildAgent(out, { selfContained = false, node = execPath } = {}) {
  await mkdir(out, { recursive: true });
  const result = await build({
    entryPoints: [join(root, 'worker', 'agent.main.ts')],
    outfile: join(out, 'agent.mjs'),
    absWorkingDir: root,
    bundle: true,
    external: nativeAddons,
    platform: 'node',
    format: 'esm',
    target: `node${nodeMajor}`,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    plugins: [builtinsAsCommonJs, sodiumAtFirstUse],
  });
  // Started by URL relative to the module that starts them, which is now agent.mjs; with the modules
  // they import.
  const threads = ['tar-reader.js', 'hash-worker.js', 'unpack-writer.js', 'v2/chunk-worker.js'];
  for (const thread of [...threads, 'v2/chunk-id-hash.js', 'v2/blob-codec.js'])
    await copyFile(join(root, 'format', thread), join(out, basename(thread)));

  // V8's code cache of the bundle, made at build so the first start has it too: compiling the 1 MiB
  // bundle at each start took 6 MiB of V8 zone memory that glibc then kept (idle RSS 72 MiB without
  // the cache, 69 with). Made by starting the bundle once without configuration, so it stops at its
  // configuration check, on the agent's node with the launcher's flags (another version ignores it);
  // portable, so it still matches once the package is unpacked elsewhere.
  const cache = join(out, 'compile-cache');
  await rm(cache, { recursive: true, force: true });
  const flushAtExit =
    'data:text/javascript,import{flushCompileCache}from"node:module";process.on("exit",flushCompileCache)';
  spawnSync(node, [...nodeFlags, '--import', flushAtExit, join(out, 'agent.mjs')], {
    env: { NODE_COMPILE_CACHE: cache, NODE_COMPILE_CACHE_PORTABLE: '1' },
    stdio: 'ignore',
    timeout: 30_000,
  });

  // The agent's memory budget is 250 MiB whatever the snapshot's size. Three settings keep backups
  // inside it (1 GiB, several in a row; peak RSS measured 236-268 MiB without them, 196-212 with):
  // - glibc's mmap threshold fixed at 128 KiB: by default it rises to the size of the biggest block
  //   freed, after which the 1 MiB read and write buffers came from the main heap, which fragmented
  //   and kept ~40 MiB more after every backup;
  // - glibc's malloc arenas capped at two (each thread that allocates, zstd's workers among them,
  //   would otherwise keep an arena of its own);
  // - V8's young generation capped at 2 MiB semi-spaces (the hot path's buffers live outside the
  //   JavaScript heap).
  // readlink -f: the launcher still finds its files when started through a symbolic link.
  const runNode = selfContained ? '"$dir/node/bin/node"' : 'node';
  const launcher = `#!/bin/sh
dir=$(dirname "$(readlink -f "$0")")
export MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-2} MALLOC_MMAP_THRESHOLD_=\${MALLOC_MMAP_THRESHOLD_:-131072}
export NODE_COMPILE_CACHE="$dir/compile-cache" NODE_COMPILE_CACHE_PORTABLE=1
exec ${runNode} ${nodeFlags.join(' ')} "$dir/agent.mjs" "$@"
`;
  await writeFile(join(out, 'strackt-agent'), launcher);
  await chmod(join(out, 'strackt-agent'), 0o755);

  return result.metafile;
}

// Node gives import.meta.url with symbolic links resolved, argv[1] as typed.
if (argv[1] && import.meta.url === pathToFileURL(realpathSync(argv[1])).href) {
  await buildAgent(join(root, '.build', 'agent'));
}
