// What a name of a service, volume, environment or server is, and what it becomes: shared by the
// API's schemas (zod's classic build) and the agent's (its mini build), which cannot share schemas.

/** Names end up in paths, env var names and workflow ids: DNS-label shaped. */
export const namePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const nameRule =
  'must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen';

/** Services find their volumes through these variables, e.g. STRACKT_VOLUME_PGDATA. */
export function volumeVariable(volume: string): string {
  return `STRACKT_VOLUME_${volume.toUpperCase().replace(/-/g, '_')}`;
}
