import { isoTime } from './iso-time.ts';
import type { LogLevel } from './config.ts';
import { stdoutLines } from './log-stdout.ts';

/**
 * A program's logger: one JSON line per event, `component` naming the program, the level by
 * LOG_LEVEL. Everything else logs through its children (`log.child({ task })`), so the ids bound once
 * are on every line. Callers pass ids and outcomes, never secrets: tokens, keys, presigned URLs and
 * credentials have no business in a log line, so there is no redaction layer to rely on.
 *
 * The lines are pino's (level names, ISO time, bound fields, msg last), written by these few lines
 * rather than pino: on an idle agent pino and its stream and stringify packages cost ~3 MiB of RSS,
 * about a third of what the agent holds beyond Node itself.
 */
export interface Logger {
  trace: LogMethod;
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  fatal: LogMethod;
  child(bindings: Record<string, unknown>): Logger;
}

/** A message alone, or the fields of the event first (an Error is logged as `err`). */
export interface LogMethod {
  (message: string): void;
  (fields: object, message?: string): void;
}

/** Where lines go: stdout unless a test captures them. */
export interface LogDestination {
  write(line: string): void;
}

const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const rank = (level: LogLevel) => (level === 'silent' ? Infinity : levels.indexOf(level));

export function createLogger(
  component: string,
  { level = 'info', destination = stdoutLines() }: { level?: LogLevel; destination?: LogDestination } = {},
): Logger {
  return logger(rank(level), destination, { component });
}

function logger(threshold: number, destination: LogDestination, bound: Record<string, unknown>): Logger {
  const at =
    (level: (typeof levels)[number]): LogMethod =>
    (first: string | object, message?: string) => {
      if (levels.indexOf(level) < threshold) return;
      const fields = typeof first === 'string' ? {} : first instanceof Error ? { err: first } : first;
      const msg =
        typeof first === 'string' ? first : (message ?? (first instanceof Error ? first.message : undefined));
      destination.write(`${line({ level, time: isoTime(Date.now()), ...bound, ...fields, msg })}\n`);
    };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (bindings) => logger(threshold, destination, { ...bound, ...bindings }),
  };
}

/** JSON of the event: errors as type, message and stack (with their own fields), cycles and bigints survive. */
function line(event: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(event, (_key, value: unknown) => {
    if (typeof value === 'bigint') return value.toString();
    if (value === null || typeof value !== 'object') return value;
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
    if (value instanceof Error)
      return { ...value, type: value.name, message: value.message, stack: value.stack, cause: value.cause };
    return value;
  });
}

/** Bytes moved since `startedAt` (epoch ms) as a log line gives them: with the time taken and the rate. */
export function transferred(bytes: number, startedAt: number) {
  const seconds = (Date.now() - startedAt) / 1000;
  return {
    bytes,
    seconds: Math.round(seconds * 10) / 10,
    mibPerSecond: seconds > 0 ? Math.round((bytes / 2 ** 20 / seconds) * 10) / 10 : null,
  };
}
