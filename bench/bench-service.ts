import type { ServiceSpec } from '../common/environment-spec.ts';

/** The benchmarks' environment: one small HTTP service on `port` that owns the data set's volumes. */
export function benchService(port: number, volumes: string[]): ServiceSpec {
  return {
    name: 'app',
    command: `exec node -e "require('http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')"`,
    env: {},
    volumes,
    healthCheck: { type: 'http', port, path: '/' },
    healthTimeoutSeconds: 30,
    stopSignal: 'SIGTERM',
    stopTimeoutSeconds: 10,
  };
}
