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

/** A volume's share of a snapshot: its entries, and the bytes of its files before compression. */
export interface VolumeTotal {
  name: string;
  entries: number;
  bytes: number;
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
  volumes: VolumeTotal[];
  entries: ManifestEntry[];
  data: { object: string; tarBytes: number };
}

export const dataObjectName = 'data.tar.zst.strackt';
/**
 * The sealed manifest object's bound (some 500,000 files' entries), for writers and readers alike: an
 * agent holds a manifest whole while it restores, within its memory budget.
 */
export const maxManifestBytes = 64 * 1024 * 1024;
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

/** What a manifest says about a snapshot beyond what the archive itself yields. */
export type ManifestFacts = Omit<Manifest, 'format' | 'formatVersion' | 'volumes' | 'entries' | 'data'>;

/** The manifest of an archive just written: per-volume totals, entries and the data object filled in from it. */
export function buildManifest(
  facts: ManifestFacts,
  archive: { entries: ManifestEntry[]; tarBytes: number },
): Manifest {
  const volumes = [...new Set(facts.services.flatMap((s) => s.volumes))].sort();
  return {
    format: 'strackt-snapshot',
    formatVersion: 1,
    ...facts,
    volumes: volumeTotals(archive.entries, volumes),
    entries: archive.entries,
    data: { object: dataObjectName, tarBytes: archive.tarBytes },
  };
}
