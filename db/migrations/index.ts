import type { Migration } from 'kysely';
import * as foundation from './2026-11-26T0400-foundation.ts';

// Listed explicitly (not read from the folder) so the set of migrations is part of the build.
export const migrations: Record<string, Migration> = {
  '2026-11-26T0400-foundation': foundation,
};
