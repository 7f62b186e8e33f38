// Makes the agent's package for this machine's architecture:
// .build/agent-package/strackt-agent-<version>-linux-<arch>.tar.gz, which runs on a Debian server
// with nothing installed: the bundled agent, its native addons, a Node.js runtime, the systemd unit
// and install.sh. Prints the tarball's path on stdout.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative, sep } from 'node:path';
import { arch, platform, stderr, stdout } from 'node:process';
import { buildAgent, nativeAddons, root } from './build-agent.mjs';

const say = (msg) => stderr.write(`package-agent: ${msg}\n`);
// The native addons in node_modules were built or fetched for this machine only.
if (platform !== 'linux' || !['x64', 'arm64'].includes(arch))
  throw new Error(
    `packages are made on the platform they are for (linux x64 or arm64), not ${platform} ${arch}`,
  );

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const name = `strackt-agent-${version}-linux-${arch}`;
const outDir = join(root, '.build', 'agent-package');
const stage = join(outDir, name);
await rm(stage, { recursive: true, force: true });

// The Node.js release the scripts run on (deploy/node-version), installed once per machine by
// deploy/node.sh from the npm registry and checked against its pinned digest there.
const pinnedNode = execFileSync('bash', [join(root, 'deploy', 'node.sh')], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}).trim();
const metafile = await buildAgent(stage, { selfContained: true, node: join(pinnedNode, 'bin', 'node') });
const imported = Object.values(metafile.outputs).flatMap((o) => o.imports);
const unbundled = imported.filter(
  (i) => i.external && !i.path.startsWith('node:') && !builtinModules.includes(i.path),
);
const unexpected = unbundled.map((i) => i.path).filter((p) => !nativeAddons.includes(p));
if (unexpected.length) throw new Error(`the bundle still imports ${unexpected.join(', ')}: bundle it`);
await copyLicenses(Object.keys(metafile.inputs), join(stage, 'licenses'));

await mkdir(join(stage, 'node', 'bin'), { recursive: true });
const node = join(stage, 'node', 'bin', 'node');
await copyFile(join(pinnedNode, 'bin', 'node'), node);
await chmod(node, 0o755);
await copyFile(join(pinnedNode, 'LICENSE'), join(stage, 'node', 'LICENSE'));
const nodeVersion = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
await copyNativeAddons(node, join(stage, 'node_modules'));

for (const file of ['install.sh', 'strackt-agent.service'])
  await copyFile(join(root, 'deploy', 'agent-package', file), join(stage, file));
await chmod(join(stage, 'install.sh'), 0o755);
await writeFile(join(stage, 'VERSION'), `${version} (${commit()}), Node.js ${nodeVersion}\n`);

smokeTest(stage);
const tarball = join(outDir, `${name}.tar.gz`);
// Sorted, owned by root and without this machine's user names: the same tree makes the same listing.
execFileSync('tar', [
  '--sort=name',
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '-czf',
  tarball,
  '-C',
  outDir,
  name,
]);
say(`${tarball}: ${((await stat(tarball)).size / 1024 / 1024).toFixed(1)} MiB`);
stdout.write(`${tarball}\n`);

/**
 * Copies the files the native addons load, found by loading them with the packaged node itself
 * (require.cache then lists every script and .node file, including the prebuilt binary that
 * sodium-native picks for this platform), and each of their packages' package.json, which Node and
 * require-addon read to resolve them. Copying whole packages would bring zstd-napi's sources and its
 * install-time dependencies (tens of MiB) for a 1 MiB binary.
 */
async function copyNativeAddons(node, into) {
  // As the agent loads them: zstd-napi through its binding alone (format/archive-writer.ts).
  const script = `require('sodium-native'); require('zstd-napi/binding');
console.log(JSON.stringify(Object.keys(require.cache)));`;
  const loaded = JSON.parse(execFileSync(node, ['-e', script], { cwd: root, encoding: 'utf8' }));
  // require.cache holds real paths (node_modules may be a symbolic link).
  const realModules = realpathSync(join(root, 'node_modules'));
  const files = new Set();
  for (const path of loaded) {
    const rel = relative(realModules, path);
    if (rel.startsWith('..')) throw new Error(`${path} is not under node_modules`);
    files.add(rel);
    files.add(join(packageDir(rel), 'package.json'));
    for (const license of ['LICENSE', 'NOTICE'])
      if (existsSync(join(realModules, packageDir(rel), license))) files.add(join(packageDir(rel), license));
  }
  for (const rel of files) {
    await mkdir(dirname(join(into, rel)), { recursive: true });
    await copyFile(join(realModules, rel), join(into, rel));
  }
  say(`native addons: ${[...files].filter((f) => f.endsWith('.node')).join(', ')}`);
}

/** The package folder of a path under node_modules: a/index.js -> a, @s/b/x.js -> @s/b, a/node_modules/c/y.js -> a/node_modules/c. */
function packageDir(rel) {
  const parts = rel.split(sep);
  let end = 0;
  for (;;) {
    end += parts[end].startsWith('@') ? 2 : 1;
    if (parts[end] !== 'node_modules') return parts.slice(0, end).join(sep);
    end += 1;
  }
}

/** The licences of the packages bundled into agent.mjs, which their terms ask to ship with them. */
async function copyLicenses(inputs, into) {
  // Paths relative to the repo, or real paths if node_modules is a symbolic link: the first node_modules counts.
  const marker = `node_modules${sep}`;
  const packages = new Set(
    inputs
      .filter((i) => i.includes(marker))
      .map((i) => packageDir(i.slice(i.indexOf(marker) + marker.length))),
  );
  for (const pkg of packages) {
    const dir = join(root, 'node_modules', pkg);
    const licenses = (await readdir(dir)).filter((f) => /^(licen[cs]e|notice|copying)/i.test(f));
    if (!licenses.length) throw new Error(`${pkg} is bundled but has no licence file to ship with it`);
    await mkdir(join(into, pkg), { recursive: true });
    for (const file of licenses) await copyFile(join(dir, file), join(into, pkg, file));
  }
}

function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

/** The packaged agent without its configuration must load every module, addons included, then stop naming what is missing. */
function smokeTest(dir) {
  try {
    execFileSync(join(dir, 'strackt-agent'), [], { env: { PATH: '/usr/bin:/bin' }, stdio: 'pipe' });
  } catch (err) {
    if (err.status === 2 && /STRACKT_API_URL is required/.test(err.stderr)) return;
    throw new Error(`the packaged agent does not start: ${err.stderr || err.message}`);
  }
  throw new Error(`the packaged agent in ${basename(dir)} started without its configuration`);
}
