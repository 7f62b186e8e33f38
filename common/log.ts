/**
 * One JSON line per event on stdout. Callers pass ids and outcomes, never secrets: tokens, keys and
 * credentials have no business in a log line, so there is no redaction layer to rely on.
 */
export function createLogger(component: string) {
  const write = (level: string, msg: string, fields?: Record<string, unknown>) =>
    process.stdout.write(
      `${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields })}\n`,
    );
  return {
    info: (msg: string, fields?: Record<string, unknown>) => write('info', msg, fields),
    warn: (msg: string, fields?: Record<string, unknown>) => write('warn', msg, fields),
    error: (msg: string, err?: unknown, fields?: Record<string, unknown>) =>
      write('error', msg, {
        ...fields,
        error: err instanceof Error ? err.message : err,
        stack: (err as Error)?.stack,
      }),
  };
}

export type Logger = ReturnType<typeof createLogger>;
