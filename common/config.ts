import { readFileSync } from 'node:fs';
import * as z from './zod-mini.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * What an operator reads when a variable is missing or malformed, for values they must make
 * themselves (a key) rather than look up (an address). Attach it with withHelp.
 */
const configHelp = z.registry<{ help: string }>();

export function withHelp<T extends z.core.$ZodType>(schema: T, help: string): T {
  configHelp.add(schema, { help });
  return schema;
}

/**
 * Parses the variables a program needs, once, at start. Every key may instead be given as
 * KEY_FILE (a path whose contents are the value) so secrets can come from mounted files.
 */
export function loadConfig<S extends z.core.$ZodShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodMiniObject<S>> {
  const raw: Record<string, string | undefined> = {};
  for (const key of Object.keys(shape)) {
    const file = env[`${key}_FILE`];
    if (file !== undefined && file !== '') {
      try {
        raw[key] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw new ConfigError(`${key}_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
      }
    } else {
      raw[key] = env[key] === '' ? undefined : env[key];
    }
  }
  const parsed = z.object(shape).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    const problem = raw[key] === undefined ? 'is required but not set' : `is invalid: ${issue.message}`;
    const help = configHelp.get(shape[key]!)?.help;
    throw new ConfigError(help ? `${key} ${problem}. ${help}` : `${key} ${problem}`);
  }
  return parsed.data;
}

/** Composition roots call this so a bad variable stops the program with its name, not a stack trace. */
export function exitOnConfigError<T>(program: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`${program}: configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

export const port = z.coerce.number().check(z.int(), z.minimum(0), z.maximum(65535));
export const url = z.url();
export const positiveSeconds = z.coerce.number().check(z.positive());
/** LOG_LEVEL, in every program's configuration: the levels, from the most to the least said. */
export const logLevel = z._default(
  z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  'info',
);
export type LogLevel = z.infer<typeof logLevel>;
