// The agent's own costs on the real stack: its RSS once connected and idle, and the time from Temporal
// scheduling a host step to the agent starting it, over 100 steps (deploys and stops of a one-process
// environment, through the API). This checkout's agent, which long-polls the API, beside the last agent
// that was a Temporal worker (a copy of that commit's tree, measured in a process of its own), same run.
// Started by bench/agent.sh, which brings the services up and extracts the old tree.
//   npm run bench:agent [-- --tasks N --idle-seconds S]
// Peak RSS during a backup and a restore, and their speed: npm run bench:backup / bench:restore.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { hostTaskNames } from '../common/host-tasks.ts';
import type * as Teams from '../db/teams.data.ts';
import type * as ControlPlaneHelpers from '../tests/helpers/control-plane.ts';
import type * as StackHelpers from '../tests/helpers/stack.ts';
import { idleRssMiB, rssMiB, type Rss } from './process-memory.ts';

const { values } = parseArgs({
  options: {
    /** The checkout whose control plane and agent to measure (default: this one). */
    tree: { type: 'string' },
    /** Where to write the figures as JSON instead of printing them (a run of the old tree). */
    out: { type: 'string' },
    /** The old design's checkout, measured first in a process of its own; unset: not measured. */
    'old-tree': { type: 'string' },
    'old-commit': { type: 'string', default: 'the old design' },
    tasks: { type: 'string', default: '100' },
    'idle-seconds': { type: 'string', default: '15' },
  },
});
const here = fileURLToPath(new URL('.', import.meta.url));
const tasks = Number(values.tasks);
const idleSeconds = Number(values['idle-seconds']);

interface Figures {
  idle: Rss;
  /** After the steps: VmHWM is the peak of the whole run, start-up included. */
  after: Rss;
  /** Milliseconds from ActivityTaskScheduled to the agent starting the step, one per step. */
  latencies: number[];
  /** Where "the agent started it" was read. */
  startedFrom: string;
  /** Milliseconds from ActivityTaskScheduled to a worker starting the activity, when that was not the agent. */
  toWorker?: number[];
}

interface HostStep {
  name: string;
  scheduledAt: number;
  /** ActivityTaskStarted: when the worker that runs the activity took it from Temporal. */
  startedAt: number;
  startedBy: string;
}

const ms = (t: { seconds?: { toString(): string } | null; nanos?: number | null } | null | undefined) =>
  Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

/** The host steps of the workflows, in order, from their histories. */
async function hostSteps(temporal: Client, workflowIds: string[]): Promise<HostStep[]> {
  const steps: HostStep[] = [];
  for (const id of workflowIds) {
    const events = (await temporal.workflow.getHandle(id).fetchHistory()).events ?? [];
    const scheduled = new Map<string, { name: string; at: number }>();
    for (const e of events) {
      const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
      if (name && (hostTaskNames as string[]).includes(name))
        scheduled.set(String(e.eventId), { name, at: ms(e.eventTime) });
      const started = e.activityTaskStartedEventAttributes;
      const of = started && scheduled.get(String(started.scheduledEventId));
      if (of)
        steps.push({
          name: of.name,
          scheduledAt: of.at,
          startedAt: ms(e.eventTime),
          startedBy: started.identity ?? '',
        });
    }
  }
  return steps;
}

/** The agent's own "task started" lines (agent/task-runner.ts), in order. */
function agentStarts(output: string): { step: string; attempt: number; at: number }[] {
  return output
    .split('\n')
    .filter((l) => l.includes('"msg":"task started"'))
    .map((l) => JSON.parse(l) as { time: string; step: string; attempt: number })
    .map((l) => ({ step: l.step, attempt: l.attempt, at: Date.parse(l.time) }));
}

async function measure(tree: string): Promise<Figures> {
  const load = (path: string) => import(pathToFileURL(join(tree, path)).href);
  const { startControlPlane } = (await load('tests/helpers/control-plane.ts')) as typeof ControlPlaneHelpers;
  const { uniqueName } = (await load('tests/helpers/stack.ts')) as typeof StackHelpers;
  const { createTeam } = (await load('db/teams.data.ts')) as typeof Teams;

  const cp = await startControlPlane();
  const { team, token } = await createTeam(cp.db, uniqueName('bench'));
  const server = await cp.addServer(token, team.id, 'bench');
  const pid = server.agent.child.pid!;
  try {
    const idle = await idleRssMiB(pid, idleSeconds);
    const env = await cp.request<{ id: string }>('POST', '/environments', token, {
      name: 'tiny',
      serverId: server.id,
      services: [{ name: 'app', command: 'exec sleep 3600' }],
    });
    if (env.status !== 201) throw new Error(`environment: ${JSON.stringify(env.body)}`);
    const operate = async (kind: 'deploy' | 'stop') => {
      const started = await cp.request<{ id: string; workflowId: string }>(
        'POST',
        `/environments/${env.body.id}/${kind}`,
        token,
      );
      if (started.status !== 202) throw new Error(`${kind}: ${JSON.stringify(started.body)}`);
      const op = await cp.finished(token, started.body.id);
      if (op.status !== 'succeeded') throw new Error(`${kind} failed: ${JSON.stringify(op)}`);
      return started.body.workflowId;
    };
    // Not counted: a freshly started Temporal worker's first task waits in matching (1.4 s seen),
    // which an agent that has run for a while never pays again.
    await operate('deploy');
    await operate('stop');
    const logFrom = server.agent.output().length;
    const workflowIds: string[] = [];
    // A deploy is two host steps (startEnvironment, waitHealthy), a stop one (stopEnvironment).
    for (let n = 0; n < tasks; n += 3) workflowIds.push(await operate('deploy'), await operate('stop'));
    const after = rssMiB(pid);
    const steps = (await hostSteps(cp.temporal, workflowIds)).slice(0, tasks);
    if (steps.length < tasks) throw new Error(`the histories hold ${steps.length} host steps, not ${tasks}`);

    // The old agent was the Temporal worker: Temporal's start is the moment its own poll took the step
    // (it logged nothing of its own then). The new one is handed the step by the API after a
    // control-plane activity took it, so its own "task started" line is the start.
    if (steps.every((s) => s.startedBy.startsWith('agent:')))
      return {
        idle,
        after,
        latencies: steps.map((s) => s.startedAt - s.scheduledAt),
        startedFrom:
          "ActivityTaskStarted, when the agent's own poll took the step (it logs nothing as a step " +
          'starts; the moment it then takes to begin is not counted)',
      };
    const starts = agentStarts(server.agent.output().slice(logFrom)).slice(0, tasks);
    const mismatch = steps.findIndex((s, i) => s.name !== starts[i]?.step || starts[i]?.attempt !== 1);
    if (starts.length !== steps.length || mismatch >= 0)
      throw new Error(
        `the agent's "task started" lines do not pair with the histories' steps (a retry?) at ${mismatch}: ` +
          `${JSON.stringify(steps[mismatch])} vs ${JSON.stringify(starts[mismatch])}`,
      );
    return {
      idle,
      after,
      latencies: steps.map((s, i) => starts[i]!.at - s.scheduledAt),
      startedFrom: 'the agent\'s "task started" log line',
      toWorker: steps.map((s) => s.startedAt - s.scheduledAt),
    };
  } finally {
    await server.agent.kill();
    await cp.stopServices(server.root);
    await cp.stop();
  }
}

if (values.tree) {
  writeFileSync(values.out!, JSON.stringify(await measure(values.tree)));
  process.exit(0);
}

let old: Figures | string = 'not measured in this run (no old tree: bench/agent.sh extracts it from git)';
if (values['old-tree']) {
  const out = join(values['old-tree'], 'agent-figures.json');
  const run = spawnSync(
    process.execPath,
    [
      ...['--import', 'tsx', join(here, 'agent.bench.ts'), '--tree', values['old-tree'], '--out', out],
      ...['--tasks', String(tasks), '--idle-seconds', String(idleSeconds)],
    ],
    { stdio: 'inherit' },
  );
  old =
    run.status === 0
      ? (JSON.parse(readFileSync(out, 'utf8')) as Figures)
      : `not measured in this run (its run failed, exit ${run.status ?? run.signal}: see above)`;
}
const now = await measure(fileURLToPath(new URL('..', import.meta.url)));

/** Nearest rank: p99 of 100 is the second highest. */
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]!;
const mib = (x: number) => `${x.toFixed(1)} MiB`;
const time = (x: number) => `${x.toFixed(1)} ms`;
const oldName = values['old-commit']!;
/** A figure of this agent beside the old design's, or a dash when the old one was not measured. */
function row(name: string, figure: (x: Figures) => string, target = '') {
  const theirs = typeof old === 'string' ? '-' : figure(old);
  console.log(`${name.padEnd(40)} ${figure(now).padStart(10)}  ${theirs.padStart(10)}  ${target}`);
}

console.log(
  `\nagent: connected and idle ${idleSeconds} s, then ${now.latencies.length} host steps (deploys and stops ` +
    'of a one-process environment through the API, after one of each not counted)',
);
console.log(`${''.padEnd(40)} ${'this agent'.padStart(10)}  ${oldName.padStart(10)}`);
row('idle RSS (VmRSS)', (x) => mib(x.idle.now), 'target <= 60 MiB');
row('idle, highest RSS since start (VmHWM)', (x) => mib(x.idle.peak));
row('after the steps, RSS (VmRSS)', (x) => mib(x.after.now));
row('after the steps, highest RSS (VmHWM)', (x) => mib(x.after.peak));
row('step scheduled to agent started, p50', (x) => time(percentile(x.latencies, 50)));
row('step scheduled to agent started, p99', (x) => time(percentile(x.latencies, 99)), 'target < 250 ms');
row('step scheduled to agent started, max', (x) => time(Math.max(...x.latencies)));
if (now.toWorker)
  console.log(
    `  of which Temporal to the control-plane worker: p50 ${time(percentile(now.toWorker, 50))}, ` +
      `p99 ${time(percentile(now.toWorker, 99))}`,
  );
console.log(
  `${oldName}: the last agent that was a Temporal worker, with that commit's control plane: ` +
    (typeof old === 'string' ? old : 'measured in this run'),
);
console.log("scheduled: the step's ActivityTaskScheduled time in its workflow's history");
console.log(`started, this agent: ${now.startedFrom}`);
if (typeof old !== 'string') console.log(`started, ${oldName}: ${old.startedFrom}`);
console.log('peak RSS during a backup and a restore, and their speed: npm run bench:backup, bench:restore');
