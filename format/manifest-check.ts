import { RefusedEntryError } from './entry-rules.ts';
import type { Manifest, ManifestEntry } from './manifest.ts';
import type { TarHeader } from './tar-parser.ts';

// What an unpacked archive is held to beyond the entry rules: the manifest, entry by entry in order.

export function mismatch(entry: string, what: string, declared: unknown, found: unknown): RefusedEntryError {
  return new RefusedEntryError(
    entry,
    `${what} differs from the manifest (declared ${declared}, found ${found})`,
  );
}

/** Compares an archive entry with the manifest's entry at the same position. */
export function checkAgainstManifest(path: string, h: TarHeader, declared: ManifestEntry | undefined): void {
  if (!declared) throw new RefusedEntryError(path, 'more entries than the manifest declares');
  if (declared.path !== path) throw mismatch(path, 'path', declared.path, path);
  if (declared.type !== h.type) throw mismatch(path, 'type', declared.type, h.type);
  if (declared.mode !== (h.mode & 0o7777))
    throw mismatch(path, 'mode', declared.mode.toString(8), (h.mode & 0o7777).toString(8));
  if (h.type === 'file' && declared.size !== h.size) throw mismatch(path, 'size', declared.size, h.size);
  if (
    (h.type === 'symlink' || h.type === 'hardlink') &&
    declared.target !== h.linkTarget.replace(/\/+$/, '')
  ) {
    throw mismatch(path, 'link target', declared.target, h.linkTarget);
  }
}

/** Once the archive is over: every entry the manifest declares came. */
export function checkNoneMissing(manifest: Manifest, entries: number): void {
  if (entries !== manifest.entries.length) {
    throw new RefusedEntryError(
      manifest.entries[entries]!.path,
      'declared by the manifest but missing from the archive',
    );
  }
}
