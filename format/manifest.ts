// The manifest of docs/FORMAT.md, and the checks a reader applies to what it declares.

export interface ManifestEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  sha256?: string;
  target?: string;
}

export interface Manifest {
  format: 'strackt-snapshot';
  formatVersion: 1;
  snapshotId: string;
  teamId: string;
  environmentId: string;
  environmentName: string;
  sourceServerId: string;
  createdAt: string;
  keyId: string;
  services: { name: string; volumes: string[] }[];
  volumes: { name: string; entries: number; bytes: number }[];
  entries: ManifestEntry[];
  data: { object: string; tarBytes: number };
}

export const dataObjectName = 'data.tar.zst.strackt';
export const manifestObjectName = 'manifest.json.strackt';

/** Object keys of a snapshot under a destination prefix (FORMAT.md, "Objects"). */
export function snapshotObjectKeys(
  prefix: string,
  teamId: string,
  environmentId: string,
  snapshotId: string,
) {
  const base = [prefix.replace(/^\/+|\/+$/g, ''), teamId, environmentId, snapshotId]
    .filter(Boolean)
    .join('/');
  return { data: `${base}/${dataObjectName}`, manifest: `${base}/${manifestObjectName}` };
}

/** Per-volume totals, as the manifest lists them. */
export function volumeTotals(entries: ManifestEntry[], volumes: string[]): Manifest['volumes'] {
  return volumes.map((name) => {
    const mine = entries.filter((e) => e.path === name || e.path.startsWith(`${name}/`));
    return { name, entries: mine.length, bytes: mine.reduce((sum, e) => sum + (e.size ?? 0), 0) };
  });
}
