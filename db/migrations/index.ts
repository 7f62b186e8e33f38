import type { Migration } from 'kysely';
import * as foundation from './2026-11-26T0400-foundation.ts';
import * as vaultAndTeamKeys from './2026-11-26T0500-vault-and-team-keys.ts';

// Listed explicitly (not read from the folder) so the set of migrations is part of the build.
export const migrations: Record<string, Migration> = {
  '2026-11-26T0400-foundation': foundation,
  '2026-11-26T0500-vault-and-team-keys': vaultAndTeamKeys,
};
