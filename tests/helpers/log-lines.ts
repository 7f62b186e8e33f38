import type { LogLevel } from '../../common/config.ts';
import { createLogger } from '../../common/log.ts';

/** One line of our logs, parsed. */
export interface LogLine {
  level: string;
  time: string;
  component: string;
  msg: string;
  [field: string]: unknown;
}

/**
 * The JSON lines of a program's output (its stdout and stderr mixed), parsed; anything else skipped,
 * and the last line too while it is still being written.
 */
export function logLines(output: string): LogLine[] {
  return output
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** A logger whose lines a test reads back: the raw text (to search for secrets) and parsed. */
export function capturedLogger(component: string, level: LogLevel = 'trace') {
  let text = '';
  const log = createLogger(component, {
    level,
    destination: { write: (line: string) => void (text += line) },
  });
  return { log, text: () => text, lines: () => logLines(text) };
}
