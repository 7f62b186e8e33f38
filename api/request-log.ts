import type { MiddlewareHandler } from 'hono';
import { requestId } from 'hono/request-id';
import { newId } from '../common/ids.ts';
import type { Logger } from '../common/log.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** This request's id: in its X-Request-Id answer header, its error body and every line it logs. */
    requestId: string;
    /** The API's logger with this request's id bound: what handlers and the error handler log through. */
    log: Logger;
  }
}

/**
 * A caller's own X-Request-Id (a proxy's, a client's) is kept so its logs and ours line up, if it is
 * short and of id characters (letters, digits, _ - =); anything else could forge log fields or fill
 * lines, and is replaced by an id of ours. The id is answered in X-Request-Id.
 */
export const requestIds = () => requestId({ limitLength: 64, generator: () => newId('req') });

// Agents hold a long poll open per free slot and report progress every 2 s per running step: at info
// these would be most of the log. Failures of them stay at info.
const frequent = [/^\/agent\/tasks\/claim$/, /^\/agent\/tasks\/[^/]+\/heartbeat$/, /^\/healthz$/];

/**
 * Binds the request's id to a child logger, and logs one access line when the request is answered:
 * method, path, status and time. The path is without its query string and no header is logged, so
 * neither a token nor a query value can reach the log.
 */
export function requestLog(log: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const requestLog = log.child({ requestId: c.get('requestId') });
    c.set('log', requestLog);
    await next();
    const { status } = c.res;
    const quiet = status < 400 && frequent.some((path) => path.test(c.req.path));
    requestLog[quiet ? 'debug' : 'info'](
      { method: c.req.method, path: c.req.path, status, ms: Math.round(performance.now() - started) },
      'request',
    );
  };
}
