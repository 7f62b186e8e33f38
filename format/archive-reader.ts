import { mkdir, rm } from 'node:fs/promises';
import { ContainerOpener } from './container-opener.ts';
import type { KeySource } from './data-key.ts';
import type { Manifest } from './manifest.ts';
import { TarParser } from './tar-parser.ts';
import { UnpackPlan } from './unpack-plan.ts';
import { UnpackThreads } from './unpack-threads.ts';
import { UnpackZstd } from './unpack-zstd.ts';

export interface UnpackOptions {
  /** The data object, as stored: a stream, or any iterable of its bytes. */
  source: AsyncIterable<Buffer>;
  key: KeySource;
  /** Checked against the header before anything is decrypted, so a wrong key is named as such. */
  expectedKeyId?: Buffer;
  manifest: Manifest;
  /** Created by the unpacker; must not exist, unless resuming. Removed again if the archive is refused. */
  staging: string;
  onProgress?: (p: { entries: number; bytes: number }) => void;
  /**
   * Continues an unpack that was interrupted (an agent restart) into the `staging` it left: the
   * archive is read again from its start, every chunk still authenticated, but the first
   * `entriesDone` entries, already written and verified, are not written again.
   */
  resume?: { entriesDone: number };
  /** The count of leading entries written and verified so far, as it grows: what `resume` takes. */
  onCheckpoint?: (entriesDone: number) => void;
  /**
   * Awaited before each tar buffer is written (1 MiB, at most 8 in flight); what it throws stops the
   * unpack. A restore checks there that the disk keeps its margin: a timer's check came too late
   * for a fast disk filled by another process meanwhile.
   */
  roomCheck?: () => Promise<void>;
  /** Leave staging in place on a failure (a caller that may resume, or discards it itself). */
  keepStagingOnFailure?: boolean;
  /**
   * Check everything (every chunk, every entry against the manifest, every file's SHA-256) and write
   * nothing: `staging` is never created. What verifying a stored snapshot does.
   */
  verifyOnly?: boolean;
}

/**
 * container -> decrypt -> zstd -> tar entries -> files under `staging`, checking every chunk, every
 * entry against the rules and the manifest, and every file's SHA-256, in constant memory.
 *
 * Three threads, as one core cannot do it all at the pace of `zstd -d | tar -x` (per GB of tar,
 * measured: zstd 0.8 s, decryption 0.25 s, SHA-256 0.65-0.75 s, write syscalls 0.8-0.9 s): this one
 * decrypts, decompresses, parses and checks every entry, then gives each tar buffer with the list of
 * file-system operations it decided on to a file-system thread (unpack-writer.js) and a hashing
 * thread (hash-worker.js) at once. The buffers are shared memory, never copied.
 * A file's SHA-256 is therefore compared after it is written: the archive is refused all the same,
 * staging and all, and of several failures the one reported is the first in archive order.
 */
export async function unpackArchive(options: UnpackOptions): Promise<{ entries: number; bytes: number }> {
  const { manifest, staging } = options;
  const writing = !options.verifyOnly;
  const asRoot = process.getuid?.() === 0;
  if (!options.resume && writing) await mkdir(staging, { recursive: false, mode: 0o700 });
  const plan = new UnpackPlan(manifest, staging, options.resume?.entriesDone ?? 0, options.onProgress);
  const threads = new UnpackThreads({
    writing,
    asRoot,
    manifest,
    onCheckpoint: options.onCheckpoint,
    roomCheck: options.roomCheck,
    position: () => plan.entries,
  });
  try {
    await readArchive(options, plan, threads).catch((err: unknown) => threads.fail(err, plan.entries));
    await threads.settled();
    threads.throwFailure();
    plan.finish(writing, asRoot);
  } catch (err) {
    await threads.stop();
    if (!options.keepStagingOnFailure && writing) await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    await threads.stop();
  }
  return { entries: plan.entries, bytes: plan.bytes };
}

/** Decrypts, decompresses into tar buffers, parses each (the plan checks every entry) and hands it to the threads. */
async function readArchive(options: UnpackOptions, plan: UnpackPlan, threads: UnpackThreads): Promise<void> {
  const opener = new ContainerOpener(options.key, options.expectedKeyId, true);
  const parser = new TarParser((h) => plan.entry(h));
  const zstd = new UnpackZstd(threads, async (tar, slot) => {
    plan.begin(tar);
    try {
      await parser.feed(tar);
    } finally {
      threads.handOver(slot, plan.take());
    }
  });
  for await (const data of options.source) {
    opener.push(data);
    for (let plain = opener.next(); plain; plain = opener.next()) {
      await zstd.push(plain);
      if (threads.failed) return; // leaving the loop destroys the source
    }
  }
  opener.end();
  await zstd.end();
  parser.finish();
}
