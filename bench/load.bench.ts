// What one control plane carries: N environments with the product's 15-minute schedules (real
// Temporal Schedules made through the API), tiny volumes, several environments per agent process,
// for a while, with pages polling the API meanwhile. Prints schedule lateness, backups per minute,
// API latency, PostgreSQL connections, Temporal's growth, the missed-backups sweep, and the
// control-plane worker's CPU and RSS, beside the targets of issue 22. Started by bench/load.sh.
//   npm run bench:load [-- --environments N --per-agent K --minutes M --spread S --pages P]
// A run of a few minutes at small N on a busy machine; N = 1000 for 60 minutes on a quiet one.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startControlPlanePrograms } from '../tests/helpers/control-plane-programs.ts';
import { stack } from '../tests/helpers/stack.ts';
import { apiHandlerTimes } from './load/api-log.ts';
import { cpuByComponent, pidsWhoseCommandHas } from './load/cpu-by-component.ts';
import { pollApi, type PolledRoute } from './load/api-poller.ts';
import { accountRuns, backupsEnded, benchApplicationName, pgConnections } from './load/db-figures.ts';
import { createFleet, runAsCustomersSide, scheduleFleet } from './load/fleet.ts';
import { processSampler } from './load/process-sampler.ts';
import { mean, ms, percentile, quarters, seconds } from './load/stats.ts';
import { latenessStages } from './load/lateness-stages.ts';
import { scheduleLateness, sweepDurations, sweepNow, temporalState } from './load/temporal-figures.ts';

const { values } = parseArgs({
  options: {
    environments: { type: 'string', default: '50' },
    /** Environments each agent process carries (one server, one team each). */
    'per-agent': { type: 'string', default: '25' },
    minutes: { type: 'string', default: '10' },
    /** Minutes of each quarter hour the runs are spread over (default: the run's length, at most 15). */
    spread: { type: 'string' },
    /** Open pages polling the API, each every --poll-seconds. */
    pages: { type: 'string', default: '10' },
    'poll-seconds': { type: 'string', default: '5' },
    'sample-seconds': { type: 'string', default: '10' },
  },
});
const environments = Number(values.environments);
const perAgent = Number(values['per-agent']);
const minutes = Number(values.minutes);
const spread = Math.min(15, Math.max(1, Number(values.spread ?? Math.min(15, minutes))));
const minuteMs = 60_000;

// Before any client connects: the bench's own database connections are told apart by this name.
process.env.PGAPPNAME = benchApplicationName;
const setupStarted = new Date();
// The buckets are the customers' too.
const s3Port = stack.s3.endpoint.split(':').at(-1);
for (const pid of pidsWhoseCommandHas('versitygw', `127.0.0.1:${s3Port}`)) runAsCustomersSide(pid);
const cp = await startControlPlanePrograms();
const teams = await createFleet(cp, { environments, perAgent });
console.log(
  `${environments} environments on ${teams.length} agents (${perAgent} per agent, one server and team each), ` +
    `made in ${((Date.now() - setupStarted.getTime()) / 1000).toFixed(0)} s`,
);

// The window starts at a whole minute far enough ahead for every schedule to exist by then.
const windowStart = new Date(Math.ceil((Date.now() + 60_000 + 40 * environments) / minuteMs) * minuteMs);
const windowEnd = new Date(windowStart.getTime() + minutes * minuteMs);
const schedulesStarted = Date.now();
await scheduleFleet(cp, teams, { firstMinute: windowStart.getUTCMinutes() % 15, spread });
console.log(
  `${environments} schedules made in ${((Date.now() - schedulesStarted) / 1000).toFixed(0)} s; ` +
    `runs ${windowStart.toISOString()} to ${windowEnd.toISOString()}, spread over ${spread} min of each quarter hour`,
);

const worker = processSampler(cp.programs.worker.child.pid!);
const api = processSampler(cp.programs.api.child.pid!);
// STRACKT_TEST_TEMPORAL=postgres: the server binary, the stack's only one (deploy/lib.sh).
const temporalServerBin = process.env.STRACKT_TEST_TEMPORAL_SERVER_BIN;
const temporalPort = `--port ${stack.temporalAddress.split(':').at(-1)}`;
// The dev server where it runs, else the server binary (its path is exported either way).
const temporalPid = [
  ...pidsWhoseCommandHas('start-dev', temporalPort),
  ...(temporalServerBin ? pidsWhoseCommandHas(`${temporalServerBin} `) : []),
][0];
const temporalProcess = temporalPid === undefined ? undefined : processSampler(temporalPid);
const connections: number[] = [];
await sleep(windowStart.getTime() - Date.now());
const before = await temporalState(cp.temporal, windowStart);
const agentPids = new Set(teams.map((t) => t.agent.child.pid));
const machineCpu = cpuByComponent((pid, cmdline) => {
  if (pid === process.pid) return 'bench (its pages polling, samplers)';
  if (pid === cp.programs.api.child.pid) return 'API';
  if (pid === cp.programs.worker.child.pid) return 'control-plane worker';
  if (agentPids.has(pid)) return 'agents';
  if (cmdline.includes('start-dev') && cmdline.includes(temporalPort)) return 'Temporal (dev server)';
  if (temporalServerBin && cmdline.startsWith(`${temporalServerBin} `))
    return 'Temporal (server; its persistence is PostgreSQL)';
  if (/^(\S*\/)?postgres[: ]/.test(cmdline)) return 'PostgreSQL (all its clients)';
  if (cmdline.includes('versitygw')) return 'versitygw (the buckets)';
  return undefined;
});
const apiLogFrom = cp.programs.api.output().length;
const stopPolling = new AbortController();
const polled = pollApi(cp.apiUrl, teams, {
  pages: Number(values.pages),
  everyMs: Number(values['poll-seconds']) * 1000,
  stop: stopPolling.signal,
});
let sampling = Promise.resolve();
const sampler = setInterval(
  () => {
    sampling = sampling.then(async () => {
      worker.sample();
      api.sample();
      temporalProcess?.sample();
      connections.push((await pgConnections(cp.db)).total);
    });
  },
  Number(values['sample-seconds']) * 1000,
);
await sleep(windowEnd.getTime() - Date.now());
const cpuUsed = machineCpu();
stopPolling.abort();
clearInterval(sampler);
await sampling;
const poll = await polled;
const handlerTimes = apiHandlerTimes(cp.programs.api.output().slice(apiLogFrom));

// Runs due near the end are still going: let them finish (bounded) before they are counted.
const drainUntil = Date.now() + 3 * minuteMs;
let runs = await accountRuns(cp.db, windowStart, windowEnd);
while (runs.running > 0 && Date.now() < drainUntil) {
  await sleep(5_000);
  runs = await accountRuns(cp.db, windowStart, windowEnd);
}
const hours = minutes / 60;
const after = await temporalState(cp.temporal, windowStart);
await sweepNow(cp.temporal);
const lateness = await scheduleLateness(cp.temporal, windowStart);
const stages = await latenessStages(cp.temporal, lateness.runIds);
const sweeps = await sweepDurations(cp.temporal, setupStarted);
const ended = await backupsEnded(cp.db, windowStart, windowEnd);

const rows: [string, string, string][] = [];
const row = (figure: string, measured: string, target = '') => rows.push([figure, measured, target]);
row(
  'lateness, nominal -> backup start, p50',
  seconds(percentile(lateness.toBackupStart, 50)),
  `(${lateness.toBackupStart.length} runs)`,
);
row('lateness, nominal -> backup start, p99', seconds(percentile(lateness.toBackupStart, 99)), '< 5 s');
// Whether lateness grows as the window goes on (Temporal's state and the tables grow with it).
const byQuarter = [0, 1, 2, 3].map((q) =>
  lateness.toBackupStart.filter((_, i) => {
    const offset = lateness.backupNominal[i]! - windowStart.getTime();
    return Math.min(3, Math.floor((4 * offset) / (windowEnd.getTime() - windowStart.getTime()))) === q;
  }),
);
row('  p99 by quarter of the window', byQuarter.map((xs) => seconds(percentile(xs, 99))).join(' / '));
row(
  '  of which Temporal: nominal -> run start, p50 / p99',
  `${seconds(percentile(lateness.toRunStart, 50))} / ${seconds(percentile(lateness.toRunStart, 99))}`,
);
for (const [stage, xs] of [
  ['  then waiting for a worker (first task queued)', stages.queued],
  ["  then the worker's first task (its local activities)", stages.inWorker],
  ['  then Temporal starting the child', stages.childStart],
] as const)
  row(
    `${stage}, p50 / p99`,
    `${seconds(percentile(xs, 50))} / ${seconds(percentile(xs, 99))}`,
    `(${xs.length} sampled)`,
  );
row(
  'backups completed per minute',
  (ended.succeeded / minutes).toFixed(1),
  `${(environments / spread).toFixed(1)} due per minute`,
);
row(
  '  backup, created -> ended, p50 / p99',
  `${seconds(percentile(ended.durationsMs, 50))} / ${seconds(percentile(ended.durationsMs, 99))}`,
);
row('  backups failed in the window', String(ended.failed), '0');
for (const route of Object.keys(poll.latencies) as PolledRoute[]) {
  const xs = poll.latencies[route];
  row(`API ${route}, p50`, ms(percentile(xs, 50)), `(${xs.length} requests, ${poll.failures[route]} failed)`);
  row(`API ${route}, p99`, ms(percentile(xs, 99)), '< 100 ms');
  const inApi = handlerTimes[route];
  if (inApi)
    row(
      `  in the API's handler, p50 / p99`,
      `${ms(percentile(inApi, 50))} / ${ms(percentile(inApi, 99))}`,
      '(its access log)',
    );
}
row('runs due in the window', String(runs.expected));
row('  succeeded / still running', `${runs.succeeded} / ${runs.running}`);
for (const [reason, n] of runs.withoutSnapshot) row(`  without snapshot: ${reason}`, String(n), 'explained');
row('  due and never recorded (unexplained)', String(runs.unrecorded), '0');
row(
  'missed-backups sweep, activity time, p50 / max',
  `${ms(
    percentile(
      sweeps.map((s) => s.ms),
      50,
    ),
  )} / ${ms(
    percentile(
      sweeps.map((s) => s.ms),
      100,
    ),
  )}`,
  `(${sweeps.length} sweeps; period 5 min, timeout 1 min)`,
);
row(
  'PostgreSQL connections, control plane, max / last',
  `${Math.max(...connections)} / ${connections.at(-1)}`,
);
row(
  'Temporal executions, per hour',
  ((after.executions - before.executions) / hours).toFixed(0),
  `(${after.executions} held)`,
);
row(
  'Temporal history started in the window, per hour',
  `${(after.historyBytes / 2 ** 20 / hours).toFixed(1)} MiB`,
);
const samplers = [
  ['control-plane worker', worker],
  ['API', api],
  ...(temporalProcess ? [['Temporal', temporalProcess] as const] : []),
] as const;
for (const [name, p] of samplers) {
  const { first, last } = quarters(p.samples);
  const rss = (xs: typeof first) => mean(xs.map((s) => s.rssMiB)) ?? 0;
  row(
    `${name} CPU, mean / max (1 = one core)`,
    `${(mean(p.samples.map((s) => s.cpu)) ?? 0).toFixed(2)} / ${Math.max(...p.samples.map((s) => s.cpu)).toFixed(2)}`,
  );
  const cpu = (xs: typeof first) => mean(xs.map((s) => s.cpu)) ?? 0;
  row(`${name} CPU, first -> last quarter`, `${cpu(first).toFixed(2)} -> ${cpu(last).toFixed(2)}`);
  row(
    `${name} RSS, first -> last quarter`,
    `${rss(first).toFixed(0)} -> ${rss(last).toFixed(0)} MiB`,
    name === 'control-plane worker' ? 'flat' : '',
  );
}

row('machine CPU over the window (2 cores)', [...cpuUsed.values()].reduce((a, b) => a + b, 0).toFixed(2));
for (const [component, cores] of cpuUsed) if (cores >= 0.005) row(`  ${component}`, cores.toFixed(2));

console.log(
  `\nload: ${environments} environments, ${teams.length} agents, ${minutes} min window, ${values.pages} pages polling every ${values['poll-seconds']} s\n`,
);
console.log(`${'figure'.padEnd(52)} ${'measured'.padStart(18)}  target`);
for (const [figure, measured, target] of rows)
  console.log(`${figure.padEnd(52)} ${measured.padStart(18)}  ${target}`);
console.log(
  '\nlateness: TemporalScheduledStartTime of each scheduledBackup to the start of its backupEnvironment child;',
);
console.log('API: from a client in this process, on the same 2-core machine as everything else.');
console.log(
  "agents and the buckets (the customers' side) run under SCHED_IDLE: on the cores the control plane leaves idle.",
);

await Promise.all(teams.map((t) => t.agent.kill()));
await cp.stop();
