import type { FileHandle } from 'node:fs/promises';

/** Reads `into.length` bytes at `at` into `into`; answers how many there were (fewer at the end). */
export async function readAt(file: FileHandle, into: Buffer, at: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await file.read(into, done, into.length - done, at + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
