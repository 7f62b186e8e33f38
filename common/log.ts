import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

/**
 * A program's root logger: one JSON line per event on stdout, `component` naming the program, the
 * level by LOG_LEVEL. Everything else logs through its children (`log.child({ task })`), so the ids
 * bound once are on every line. Callers pass ids and outcomes, never secrets: tokens, keys, presigned
 * URLs and credentials have no business in a log line, so there is no redaction layer to rely on.
 */
export function createLogger(
  component: string,
  { level = 'info', destination }: { level?: LogLevel; destination?: DestinationStream } = {},
): Logger {
  return pino(
    {
      level,
      base: { component },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names rather than pino's numbers: a reader greps for "error", not 50.
      formatters: { level: (label) => ({ level: label }) },
      // Errors as type, message and stack; the Temporal SDK passes its own under `error`.
      serializers: { err: stdSerializers.err, error: stdSerializers.err },
    },
    destination,
  );
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
