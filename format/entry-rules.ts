import { posix } from 'node:path';
import type { TarHeader } from './tar-parser.ts';

/** Why an archive entry must not be unpacked, naming the entry; each is a way out of the staging folder or worse. */
export class RefusedEntryError extends Error {
  override name = 'RefusedEntryError';
  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super(`refused archive entry "${entry}": ${reason}`);
  }
}

const typeNames: Record<string, string> = { '3': 'a character device', '4': 'a block device', '6': 'a FIFO' };

/**
 * The checks every entry passes before anything is written, independent of the manifest: a server
 * holding only the team public key can forge a well-encrypted snapshot, so neither is trusted.
 */
export class EntryRules {
  private readonly seen = new Set<string>();
  /** Each symbolic link's target, to resolve them all as the kernel will once every entry is known. */
  private readonly symlinks = new Map<string, string>();
  private readonly files = new Set<string>();

  constructor(private readonly volumes: Set<string>) {}

  /** The entry's normalised path, or a RefusedEntryError saying why not. */
  check(h: TarHeader): string {
    const raw = h.path;
    if (raw.includes('\0')) throw new RefusedEntryError(raw, 'NUL byte in the path');
    if (raw.startsWith('/')) throw new RefusedEntryError(raw, 'absolute path');
    const parts = raw.replace(/\/+$/, '').split('/');
    if (parts.some((p) => p === '..')) throw new RefusedEntryError(raw, '".." in the path');
    if (parts.some((p) => p === '' || p === '.'))
      throw new RefusedEntryError(raw, 'empty or "." path component');
    if (!this.volumes.has(parts[0]!))
      throw new RefusedEntryError(raw, `not inside a volume of the snapshot (${parts[0]})`);
    const path = parts.join('/');

    if (h.type === 'other') {
      throw new RefusedEntryError(
        raw,
        `${typeNames[h.typeflag] ?? `unsupported entry type "${h.typeflag}"`} is never restored`,
      );
    }
    if (h.mode & 0o6000) throw new RefusedEntryError(raw, 'setuid or setgid bit');

    // Two entries landing on one file would let the second replace what the first was checked as.
    const key = path.normalize('NFC');
    if (this.seen.has(key)) throw new RefusedEntryError(raw, 'collides with an earlier entry');
    for (let i = 1; i < parts.length; i++) {
      if (this.symlinks.has(parts.slice(0, i).join('/'))) {
        throw new RefusedEntryError(raw, 'its path goes through a symbolic link');
      }
    }

    if (h.type === 'symlink') {
      const target = h.linkTarget;
      if (target === '' || target.startsWith('/'))
        throw new RefusedEntryError(raw, `symbolic link to absolute path "${target}"`);
      const resolved = posix.normalize(posix.join(posix.dirname(path), target));
      if (resolved !== parts[0] && !resolved.startsWith(`${parts[0]}/`)) {
        throw new RefusedEntryError(raw, `symbolic link pointing outside its volume ("${target}")`);
      }
      this.symlinks.set(path, target);
    }
    if (h.type === 'hardlink') {
      const target = h.linkTarget.replace(/\/+$/, '');
      if (!this.files.has(target) || target.split('/')[0] !== parts[0]) {
        throw new RefusedEntryError(
          raw,
          `hard link to "${h.linkTarget}", which is not an earlier file of its volume`,
        );
      }
    }
    if (h.type === 'file') this.files.add(path);
    this.seen.add(key);
    return path;
  }

  /**
   * After the last entry: every symbolic link resolved as the kernel resolves it, component by
   * component, through the archive's other links (declared before or after it): ".." after a link
   * climbs from where that link points, not from where it sits, so a target that reads as inside its
   * volume can still lead out of it. A link that leads out, or loops, is refused before the swap.
   */
  checkLinks(): void {
    for (const [path, target] of this.symlinks) {
      const volume = path.split('/')[0]!;
      const at = path.split('/').slice(0, -1);
      const rest = target.split('/');
      for (let hops = 0; rest.length;) {
        const part = rest.shift()!;
        if (part === '' || part === '.') continue;
        if (part === '..') {
          if (at.length <= 1)
            throw new RefusedEntryError(path, `symbolic link leading outside its volume ("${target}")`);
          at.pop();
          continue;
        }
        const through = [...at, part].join('/');
        const next = this.symlinks.get(through);
        if (next === undefined) {
          at.push(part);
          continue;
        }
        // Like the kernel's limit: a chain this long is a loop or an attempt at one.
        if (++hops > 40) throw new RefusedEntryError(path, 'symbolic links in a loop');
        rest.unshift(...next.split('/'));
      }
      if (at[0] !== volume)
        throw new RefusedEntryError(path, `symbolic link leading outside its volume ("${target}")`);
    }
  }
}
