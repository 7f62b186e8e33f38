import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';

let binding: typeof ZstdBinding | undefined;

/**
 * zstd's own streaming API (a CommonJS native module, hence require), loaded at first use: an agent
 * with nothing to back up or restore does not hold the library (~5 MiB of its idle RSS).
 */
export function zstd(): typeof ZstdBinding {
  return (binding ??= createRequire(import.meta.url)('zstd-napi/binding') as typeof ZstdBinding);
}
