import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, writeSync } from 'node:fs';
import { chmod, chown, lchown, link, lutimes, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DecryptStream, type KeySource } from './container.ts';
import { EntryRules, RefusedEntryError } from './entry-rules.ts';
import type { Manifest, ManifestEntry } from './manifest.ts';
import { TarParser, type EntrySink, type TarHeader } from './tar-parser.ts';

export interface UnpackOptions {
  /** The data object, as stored. */
  source: Readable;
  key: KeySource;
  /** Checked against the header before anything is decrypted, so a wrong key is named as such. */
  expectedKeyId?: Buffer;
  manifest: Manifest;
  /** Created by the unpacker; must not exist. Removed again if the archive is refused. */
  staging: string;
  onProgress?: (p: { entries: number; bytes: number }) => void;
}

function mismatch(entry: string, what: string, declared: unknown, found: unknown): RefusedEntryError {
  return new RefusedEntryError(
    entry,
    `${what} differs from the manifest (declared ${declared}, found ${found})`,
  );
}

/** Compares an archive entry with the manifest's entry at the same position. */
function checkAgainstManifest(path: string, h: TarHeader, declared: ManifestEntry | undefined): void {
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

/**
 * container -> decrypt -> zstd -> tar entries -> files under `staging`, checking every chunk, every
 * entry against the rules and the manifest, and every file's SHA-256, in constant memory.
 */
export async function unpackArchive(options: UnpackOptions): Promise<{ entries: number; bytes: number }> {
  const { manifest, staging } = options;
  const rules = new EntryRules(new Set(manifest.volumes.map((v) => v.name)));
  const asRoot = process.getuid?.() === 0;
  const directories: { at: string; entry: ManifestEntry }[] = [];
  let index = 0;
  let bytes = 0;
  let openFd: number | undefined;

  async function setOwner(at: string, entry: ManifestEntry, follow: boolean): Promise<void> {
    if (asRoot) await (follow ? chown : lchown)(at, entry.uid, entry.gid);
  }

  async function onEntry(h: TarHeader): Promise<EntrySink> {
    const path = rules.check(h);
    const declared = options.manifest.entries[index];
    checkAgainstManifest(path, h, declared);
    const entry = declared!;
    index++;
    const at = join(staging, path);
    await mkdir(dirname(at), { recursive: true, mode: 0o700 });
    options.onProgress?.({ entries: index, bytes });

    switch (entry.type) {
      case 'directory':
        await mkdir(at, { recursive: true, mode: 0o700 });
        directories.push({ at, entry }); // modes and times last: adding files would change them
        return {};
      case 'symlink':
        await symlink(entry.target!, at);
        await setOwner(at, entry, false);
        await lutimes(at, entry.mtime, entry.mtime);
        return {};
      case 'hardlink':
        await link(join(staging, entry.target!), at);
        return {};
      case 'file': {
        // O_EXCL and O_NOFOLLOW: never write through something that already stands at this path.
        // Synchronous calls on purpose: page-cache writes take microseconds, while a thread-pool
        // round trip per 64 KiB slice left this thread idle most of the time (measured: 2x slower).
        const fd = openSync(
          at,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        openFd = fd;
        const hash = createHash('sha256');
        return {
          data: (chunk) => {
            hash.update(chunk);
            bytes += chunk.length;
            for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done);
          },
          end: () => {
            try {
              const sha256 = hash.digest('hex');
              if (sha256 !== entry.sha256) throw mismatch(path, 'SHA-256', entry.sha256, sha256);
              if (asRoot) fchownSync(fd, entry.uid, entry.gid);
              fchmodSync(fd, entry.mode);
              futimesSync(fd, entry.mtime, entry.mtime);
            } finally {
              openFd = undefined;
              closeSync(fd);
            }
          },
        };
      }
    }
  }

  const decrypt = new DecryptStream(options.key, options.expectedKeyId);
  const parser = new TarParser(onEntry);
  await mkdir(staging, { recursive: false, mode: 0o700 });
  // zstd decompresses in its own process: in this one it would take the core that decrypts, hashes and writes.
  const zstd = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let zstdError = '';
  zstd.stderr.on('data', (d: Buffer) => (zstdError = (zstdError + d.toString()).slice(-2000)));
  try {
    await Promise.all([
      pipeline(options.source, decrypt, zstd.stdin),
      pipeline(zstd.stdout, parser).catch((err: Error) => {
        throw zstdError ? new Error(`zstd could not decompress the archive: ${zstdError.trim()}`) : err;
      }),
    ]).catch((err) => {
      zstd.kill('SIGKILL');
      throw err;
    });
    if (index !== manifest.entries.length) {
      throw new RefusedEntryError(
        manifest.entries[index]!.path,
        'declared by the manifest but missing from the archive',
      );
    }
    for (const { at, entry } of directories.reverse()) {
      await setOwner(at, entry, true);
      await chmod(at, entry.mode);
      await utimes(at, entry.mtime, entry.mtime);
    }
  } catch (err) {
    if (openFd !== undefined) closeSync(openFd);
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return { entries: index, bytes };
}
