import {
  makeTelemetryFilterString,
  Runtime,
  type Logger as SdkLogger,
  type LogLevel as SdkLevel,
  type LogMetadata,
} from '@temporalio/worker';
import type { LogLevel } from '../common/config.ts';
import type { Logger } from '../common/log.ts';

const levelOf = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/** What Temporal's core (Rust) is asked to forward: nothing below LOG_LEVEL ever crosses into Node. */
const coreLevel: Record<LogLevel, SdkLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/** The SDK's Logger interface over ours; the SDK's metadata (sdkComponent, workflowId...) become fields. */
function sdkLogger(log: Logger): SdkLogger {
  const at =
    (level: SdkLevel) =>
    (message: string, meta?: LogMetadata): void =>
      log[levelOf[level]](meta ?? {}, message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}

/**
 * Routes the Temporal SDK's logs into the program's logger: the worker's own (lifecycle, workflow
 * and activity log calls) and core's, which otherwise go to stderr in a format of their own. Must run
 * before any connection or worker is made: the runtime is installed once per process.
 */
export function installTemporalLogging(log: Logger, level: LogLevel): void {
  Runtime.install({
    logger: sdkLogger(log),
    // Core's own crates at LOG_LEVEL; the third-party ones under it (gRPC transport) only on errors.
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: coreLevel[level] }) },
    },
  });
}
