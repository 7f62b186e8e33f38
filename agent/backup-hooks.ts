import type { EnvironmentSpec } from '../common/environment-spec.ts';
import type { Runtime } from './runtime.ts';

/** Pre hooks of every service that has one, in order; the first failure stops the backup. */
export async function runPreHooks(runtime: Runtime, spec: EnvironmentSpec): Promise<void> {
  for (const service of spec.services) {
    const hooks = service.backupHooks;
    if (hooks?.pre) await runtime.runHook(spec, service, hooks.pre, hooks.timeoutSeconds);
  }
}

/** Post hooks of every service that has one; all run even if one fails, the first failure is thrown. */
export async function runPostHooks(runtime: Runtime, spec: EnvironmentSpec): Promise<void> {
  let first: unknown;
  for (const service of spec.services) {
    const hooks = service.backupHooks;
    if (!hooks?.post) continue;
    await runtime.runHook(spec, service, hooks.post, hooks.timeoutSeconds).catch((err: unknown) => {
      first ??= err;
    });
  }
  if (first) throw first;
}
