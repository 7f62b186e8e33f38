import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFile, mkdir, readFile, readlink, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTeam } from '../../db/teams.data.ts';
import { startControlPlane, type ControlPlane } from '../helpers/control-plane.ts';
import { runProgram, type ProgramRun } from '../helpers/processes.ts';
import { repoRoot, stack, uniqueName, waitFor } from '../helpers/stack.ts';

// What a bare server has: if the package leaned on the repo's node or node_modules, it would show here.
const PATH = '/usr/bin:/bin';

/** KEY=VALUE lines, as systemd reads an EnvironmentFile. */
const parseEnv = (text: string) =>
  Object.fromEntries(text.split('\n').flatMap((l) => (/^[A-Z_]+=/.test(l) ? [l.split(/=(.*)/s, 2)] : [])));

describe('the agent package, as a newcomer installs it on a second server', () => {
  let cp: ControlPlane;
  let token: string;
  let pkg: string;
  const started: { agent: ProgramRun; dataRoot: string }[] = [];

  before(async () => {
    // Built once for the file: the bundle, the native addons and the runtime, as one tarball.
    const out = execFileSync(process.execPath, [join(repoRoot, 'deploy', 'package-agent.mjs')], {
      encoding: 'utf8',
    });
    const tarball = out.trim().split('\n').at(-1)!;
    const unpacked = join(stack.runDir, uniqueName('unpacked'));
    await mkdir(unpacked);
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
    pkg = join(unpacked, basename(tarball, '.tar.gz'));
    cp = await startControlPlane();
    token = (await createTeam(cp.db, 'second-server')).token;
  });

  after(async () => {
    for (const { agent, dataRoot } of started) {
      await agent.kill();
      await cp?.stopServices(dataRoot);
    }
    await cp?.stop();
  });

  function startAgent(launcher: string, env: Record<string, string>) {
    const dataRoot = env.STRACKT_DATA_ROOT ?? join(stack.runDir, uniqueName('agent'));
    const agent = runProgram(launcher, { PATH, ...env, STRACKT_DATA_ROOT: dataRoot });
    started.push({ agent, dataRoot });
    return agent;
  }

  async function addServer(name: string) {
    const created = await cp.request<{ server: { id: string }; agent: { token: string } }>(
      'POST',
      '/servers',
      token,
      { name },
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return { id: created.body.server.id, agentToken: created.body.agent.token };
  }

  it('runs from the unpacked tarball on its own node and addons, and deploys an environment', async () => {
    const server = await addServer('second');
    const agent = startAgent(join(pkg, 'strackt-agent'), {
      STRACKT_API_URL: cp.apiUrl,
      STRACKT_AGENT_TOKEN: server.agentToken,
    });
    await cp
      .connected(token, server.id)
      .catch((err: Error) => assert.fail(`${err.message}\n${agent.output()}`));

    const node = join(pkg, 'node', 'bin', 'node');
    const pid = agent.child.pid!;
    assert.equal(await readlink(`/proc/${pid}/exe`), node, 'the launcher runs the packaged node');
    const packagedVersion = /Node\.js (\S+)/.exec(await readFile(join(pkg, 'VERSION'), 'utf8'))![1];
    const version = execFileSync(node, ['-p', 'process.version'], { env: { PATH }, encoding: 'utf8' });
    assert.equal(version.trim(), `v${packagedVersion}`);
    const mapped = (await readFile(`/proc/${pid}/maps`, 'utf8')).split('\n').map((l) => l.split(/\s+/)[5]);
    const addons = [...new Set(mapped.filter((f) => f?.endsWith('.node')))];
    // libsodium and zstd are loaded once a backup or restore needs them, each as the agent loads it.
    assert.deepEqual(addons, [], 'no native addon is loaded while idle');
    const loaded = execFileSync(
      node,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module';
         const require = createRequire(${JSON.stringify(join(pkg, 'agent.mjs'))});
         new (require('zstd-napi/binding').DCtx)();
         const sodium = require.resolve(\`sodium-native/prebuilds/\${process.platform}-\${process.arch}/sodium-native.node\`);
         require(sodium).crypto_box_keypair(Buffer.alloc(32), Buffer.alloc(32));
         console.log(require.resolve('zstd-napi/binding'));
         console.log(sodium);`,
      ],
      { env: { PATH }, encoding: 'utf8' },
    );
    const [zstd, sodium] = loaded.trim().split('\n');
    assert.ok(zstd!.startsWith(`${pkg}/node_modules/zstd-napi/`), `zstd-napi from the package: ${zstd}`);
    assert.ok(
      sodium!.startsWith(`${pkg}/node_modules/sodium-native/`),
      `sodium-native from the package: ${sodium}`,
    );

    await cp.deployWebEnvironment(token, server.id);
  });

  it('installs with install.sh, keeps the configuration on upgrade, and takes a rotated token', async () => {
    const server = await addServer('third');
    const root = join(stack.runDir, uniqueName('root'));
    const install = (script: string, args: string[], input = '') => {
      const run = spawnSync('bash', [script, ...args], {
        env: { PATH, DESTDIR: root },
        input,
        encoding: 'utf8',
      });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      return run.stdout;
    };
    const envFile = join(root, 'etc', 'strackt-agent', 'env');
    const installed = join(root, 'opt', 'strackt-agent');

    // The token from stdin, as the README shows: it stays out of the shell history and ps.
    const output = install(
      join(pkg, 'install.sh'),
      ['--api-url', cp.apiUrl, '--token', '-'],
      server.agentToken,
    );
    assert.match(output, /nothing was started/);
    assert.equal((await stat(envFile)).mode & 0o777, 0o600);
    assert.deepEqual(parseEnv(await readFile(envFile, 'utf8')), {
      STRACKT_API_URL: cp.apiUrl,
      STRACKT_AGENT_TOKEN: server.agentToken,
    });
    const unit = await readFile(join(root, 'etc', 'systemd', 'system', 'strackt-agent.service'), 'utf8');
    for (const line of [
      'ExecStart=/opt/strackt-agent/strackt-agent',
      'EnvironmentFile=/etc/strackt-agent/env',
      'KillMode=process',
      'Restart=always',
    ])
      assert.ok(unit.split('\n').includes(line), line);
    assert.ok((await stat(join(installed, 'strackt-agent'))).mode & 0o100);

    // An upgrade without arguments keeps the token, the URL and what the operator added.
    await appendFile(envFile, 'STRACKT_UPLOAD_MIB_PER_SECOND=50\n');
    install(join(pkg, 'install.sh'), []);
    const config = parseEnv(await readFile(envFile, 'utf8'));
    assert.deepEqual(config, {
      STRACKT_API_URL: cp.apiUrl,
      STRACKT_AGENT_TOKEN: server.agentToken,
      STRACKT_UPLOAD_MIB_PER_SECOND: '50',
    });

    // The installed agent with the installed configuration, as systemd would start it.
    const dataRoot = join(stack.runDir, uniqueName('agent'));
    const first = startAgent(join(installed, 'strackt-agent'), { ...config, STRACKT_DATA_ROOT: dataRoot });
    await cp
      .connected(token, server.id)
      .catch((err: Error) => assert.fail(`${err.message}\n${first.output()}`));

    const rotated = await cp.request<{ token: string }>('POST', `/servers/${server.id}/agent-token`, token);
    assert.equal(rotated.status, 200);
    install(join(installed, 'install.sh'), ['--token', rotated.body.token]);
    const newConfig = parseEnv(await readFile(envFile, 'utf8'));
    assert.equal(newConfig.STRACKT_AGENT_TOKEN, rotated.body.token);
    assert.equal(newConfig.STRACKT_API_URL, cp.apiUrl);

    const stale = startAgent(join(installed, 'strackt-agent'), {
      ...config,
      STRACKT_DATA_ROOT: join(stack.runDir, uniqueName('agent')),
    });
    assert.equal(await stale.exited, 1);
    assert.match(stale.output(), /invalid or revoked agent token/);

    // Rotation unenrolled the server: it shows enrolled again only once the restarted agent says hello.
    await first.kill();
    const second = startAgent(join(installed, 'strackt-agent'), {
      ...newConfig,
      STRACKT_DATA_ROOT: dataRoot,
    });
    await waitFor('the agent to enrol with the new token', async () => {
      const { body } = await cp.request<{ connected: boolean; enrolledAt: string | null }>(
        'GET',
        `/servers/${server.id}`,
        token,
      );
      return body.connected && body.enrolledAt !== null;
    }).catch((err: Error) => assert.fail(`${err.message}\n${second.output()}`));
  });
});
