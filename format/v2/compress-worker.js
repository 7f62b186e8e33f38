// A compressing thread of the format-2 capture (chunk-compressor.ts): the zstd frame of each chunk it
// is sent, read from the capture's shared batch buffers, with one zstd context for all of them (zstd
// through node:zlib makes a context per call: ~2.5 ms of allocation per chunk, measured, part of it on
// the main thread). Plain JavaScript so that it starts in ~30 ms (see ../unpack-writer.js).
//
// workerData: { arenas, level }, the shared batch buffers. In: { job, arena, offset, length }, or
// 'close' once the capture is over.
// Out: { job, frame }, the frame transferred, or null when zstd does not shrink the chunk.
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const port = parentPort;
const zstd = createRequire(import.meta.url)('zstd-napi/binding');
const cctx = new zstd.CCtx();
const arenas = workerData.arenas.map((sab) => Buffer.from(sab));
let scratch = Buffer.allocUnsafe(0);

port.on('message', (m) => {
  // Between two chunks: the one place where stopping cannot cut a call short.
  if (m === 'close') return port.close();
  const { job, arena, offset, length } = m;
  const plain = arenas[arena].subarray(offset, offset + length);
  if (scratch.length < length) scratch = Buffer.allocUnsafe(length);
  let size = 0;
  try {
    // A destination smaller than the input: zstd refuses when the frame would not fit, which is
    // exactly when compression does not pay (random or already compressed data).
    if (length > 1) size = cctx.compress(scratch.subarray(0, length - 1), plain, workerData.level);
  } catch {
    size = 0;
  }
  if (size === 0) return port.postMessage({ job, frame: null });
  const frame = new Uint8Array(size);
  frame.set(scratch.subarray(0, size));
  port.postMessage({ job, frame }, [frame.buffer]);
});
