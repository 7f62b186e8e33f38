import { chmodSync, chownSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EntryRules } from './entry-rules.ts';
import { checkAgainstManifest, checkNoneMissing } from './manifest-check.ts';
import type { Manifest, ManifestEntry } from './manifest.ts';
import type { EntrySink, TarHeader } from './tar-parser.ts';

/** What the file-system thread is asked to do, in order: see unpack-writer.js. */
export type Op = (string | number)[];

/** What was decided while parsing one tar buffer, for the threads that take it. */
export interface Batch {
  ops: Op[];
  /** File data that did not lie in the tar buffer itself (a `write` op with a negative start). */
  copies: Buffer[];
  /** How many leading entries are complete at the buffer's end. */
  complete: number;
}

/**
 * The checking and planning stage of unpackArchive: each tar entry, as the parser reads it, is
 * checked against the entry rules and the manifest, then turned into the file-system thread's
 * operations under `staging`; at the end, the checks that need every entry, and directories' modes.
 */
export class UnpackPlan {
  private readonly rules: EntryRules;
  private readonly directories: { at: string; entry: ManifestEntry }[] = [];
  // Directories already asked for, so an entry whose parent is one needs no mkdir (it was a
  // thread-pool round trip per entry). Nothing can replace them: colliding entries are refused.
  private readonly made: Set<string>;
  private index = 0;
  private byteCount = 0;
  private inFile = false; // the entry being parsed is a file whose end has not been reached
  // The tar buffer being parsed, and the operations decided for it so far.
  private chunk: ArrayBufferLike | undefined;
  private ops: Op[] = [];
  private copies: Buffer[] = [];

  /** @param skip leading entries a previous attempt wrote and verified (resuming) */
  constructor(
    private readonly manifest: Manifest,
    private readonly staging: string,
    private readonly skip: number,
    private readonly onProgress?: (p: { entries: number; bytes: number }) => void,
  ) {
    this.rules = new EntryRules(new Set(manifest.volumes.map((v) => v.name)));
    this.made = new Set<string>([staging]);
  }

  /** Entries read so far. */
  get entries(): number {
    return this.index;
  }

  /** File bytes read so far. */
  get bytes(): number {
    return this.byteCount;
  }

  /** Starts on a tar buffer: file data lying in it is written from it, not copied. */
  begin(tar: Buffer): void {
    this.chunk = tar.buffer;
  }

  /** What was decided for the tar buffer begun last. */
  take(): Batch {
    const batch = {
      ops: this.ops,
      copies: this.copies,
      complete: Math.max(this.skip, this.index - (this.inFile ? 1 : 0)),
    };
    this.chunk = undefined;
    this.ops = [];
    this.copies = [];
    return batch;
  }

  /** The parser's entry handler. */
  entry(h: TarHeader): EntrySink {
    const path = this.rules.check(h);
    const declared = this.manifest.entries[this.index];
    checkAgainstManifest(path, h, declared);
    const entry = declared!;
    const seq = this.index++;
    const at = join(this.staging, path);
    const parent = dirname(at);
    if (seq < this.skip) return this.skipped(entry, at, parent);
    const { ops, made } = this;
    if (!made.has(parent)) {
      ops.push(['mkdir', seq, parent]);
      made.add(parent);
    }
    this.onProgress?.({ entries: this.index, bytes: this.byteCount });

    switch (entry.type) {
      case 'directory':
        ops.push(['mkdir', seq, at]);
        made.add(at);
        this.directories.push({ at, entry }); // modes and times last: adding files would change them
        return {};
      case 'symlink':
        if (this.skip) ops.push(['unlink', seq, at]);
        ops.push(['symlink', seq, at, entry.target!, entry.uid, entry.gid, entry.mtime]);
        return {};
      case 'hardlink':
        if (this.skip) ops.push(['unlink', seq, at]);
        ops.push(['link', seq, at, join(this.staging, entry.target!)]);
        return {};
      case 'file':
        if (this.skip) ops.push(['unlink', seq, at]);
        ops.push(['open', seq, at]);
        this.inFile = true;
        return {
          // this.ops, not ops: a file's data can span tar buffers.
          data: (data) => {
            this.byteCount += data.length;
            if (data.buffer === this.chunk)
              this.ops.push(['write', data.byteOffset, data.byteOffset + data.length]);
            else this.ops.push(['write', -this.copies.push(Buffer.from(data)), 0]);
          },
          end: () => {
            this.ops.push(['close', seq, entry.uid, entry.gid, entry.mode, entry.mtime]);
            this.inFile = false;
          },
        };
    }
  }

  /** An entry a previous attempt wrote and verified: read past, nothing written, hashed or asked of a thread. */
  private skipped(entry: ManifestEntry, at: string, parent: string): EntrySink {
    this.made.add(parent);
    if (entry.type === 'directory') {
      this.made.add(at);
      this.directories.push({ at, entry });
    }
    if (entry.type !== 'file') return {};
    this.inFile = true;
    return {
      data: (data) => void (this.byteCount += data.length),
      end: () => void (this.inFile = false),
    };
  }

  /** Once every entry is read and written: the checks that need them all, then directories' modes and times. */
  finish(writing: boolean, asRoot: boolean): void {
    checkNoneMissing(this.manifest, this.index);
    this.rules.checkLinks();
    for (const { at, entry } of writing ? this.directories.reverse() : []) {
      if (asRoot) chownSync(at, entry.uid, entry.gid);
      chmodSync(at, entry.mode);
      utimesSync(at, entry.mtime, entry.mtime);
    }
  }
}
