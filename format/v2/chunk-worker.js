// A thread of the format-2 capture (chunk-threads.ts): the keyed hash (the chunk id) and the zstd
// frame of the chunks it is sent, read from the capture's shared batch buffers, with one zstd context
// for all of them (zstd through node:zlib makes a context per call: ~2.5 ms of allocation per chunk,
// measured, part of it on the main thread). Hashes go first: the capture waits for ids to ask the
// destination about a batch, while frames are only needed once the batch before is packed. Plain
// JavaScript so that it starts in ~30 ms (see ../unpack-writer.js).
// Then each is sealed into its pack ('seal'), a blob as docs/FORMAT.md ("Blob") and blob.ts's
// BlobSealer make it, written where the pack buffer (an arena too) holds its place: sealing on the
// main thread was the largest step left there, which every other step waits for.
// A restore sends its opened chunks the same way ('write'): each hashed, checked against its id and
// written where the files want it, so that the main thread is left opening blobs.
//
// workerData: { arenas, dedupKey, level }, arenas being the shared batch buffers.
// In: { t: 'hash' | 'compress', job, arena, offset, length }, or
//   { t: 'seal', job, arena, offset, length, size, key, id, out: { arena, at } } (size: the frame's,
//   0 for the chunk raw; key: the pack's data key), or
//   { t: 'write', job, arena, offset, length, id, targets: [{ fd, at }] }, or 'close' once done.
// Out: { job, id } (hex), or { job, size }, the size of the frame now at the start of the chunk's
//   place in its arena, 0 when zstd does not shrink it (the chunk is left as it was), or for a seal
//   the blob's; for a write, { job, id } the chunk's id (written only if it is the one asked), or
//   { job, error }.
import { Buffer } from 'node:buffer';
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setImmediate } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';

const port = parentPort;
const require = createRequire(import.meta.url);
const sodium = require('sodium-native');
const zstd = require('zstd-napi/binding');
const cctx = new zstd.CCtx();
const arenas = workerData.arenas.map((sab) => Buffer.from(sab));
const dedupKey = Buffer.from(workerData.dedupKey);
const id = Buffer.alloc(32);
let scratch = Buffer.allocUnsafe(0);
const state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
let message = Buffer.allocUnsafe(0);
const hashes = [];
const seals = [];
const frames = [];
let closing = false;
let scheduled = false;

port.on('message', (m) => {
  if (m === 'close') closing = true;
  else (m.t === 'hash' ? hashes : m.t === 'seal' ? seals : frames).push(m);
  schedule();
});

function schedule() {
  if (scheduled) return;
  scheduled = true;
  // One job per turn of the event loop, so that hashes sent meanwhile overtake the frames waiting, and
  // seals too: a batch's place in its arena is free again, and a pack stored, once its seals are done.
  setImmediate(() => {
    scheduled = false;
    const m = hashes.shift() ?? seals.shift() ?? frames.shift();
    if (m) jobs[m.t](m, arenas[m.arena].subarray(m.offset, m.offset + m.length));
    if (hashes.length || seals.length || frames.length) schedule();
    // Between two jobs: the one place where stopping cannot cut a call short.
    else if (closing) port.close();
  });
}

function hash({ job }, plain) {
  sodium.crypto_generichash(id, plain, dedupKey);
  port.postMessage({ job, id: id.toString('hex') });
}

function write({ job, id: expected, targets }, plain) {
  sodium.crypto_generichash(id, plain, dedupKey);
  const got = id.toString('hex');
  try {
    if (got === expected)
      for (const { fd, at } of targets)
        for (let done = 0; done < plain.length;)
          done += writeSync(fd, plain, done, plain.length - done, at + done);
  } catch (err) {
    return port.postMessage({ job, error: { message: err.message, code: err.code } });
  }
  port.postMessage({ job, id: got });
}

function seal({ job, size, key, id: chunkId, out }, place) {
  // [encoding byte: 1 zstd, 0 raw, payload], sealed alone with the chunk id as additional data.
  const payload = size > 0 ? place.subarray(0, size) : place;
  if (message.length < 1 + payload.length) message = Buffer.allocUnsafe(1 + place.length);
  message[0] = size > 0 ? 1 : 0;
  message.set(payload, 1);
  const m = message.subarray(0, 1 + payload.length);
  const header = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES;
  const blob = arenas[out.arena].subarray(
    out.at,
    out.at + header + m.length + sodium.crypto_secretstream_xchacha20poly1305_ABYTES,
  );
  sodium.crypto_secretstream_xchacha20poly1305_init_push(state, blob.subarray(0, header), Buffer.from(key));
  sodium.crypto_secretstream_xchacha20poly1305_push(
    state,
    blob.subarray(header),
    m,
    Buffer.from(chunkId, 'hex'),
    sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
  );
  port.postMessage({ job, size: blob.length });
}

const jobs = { hash, compress, seal, write };

function compress({ job }, plain) {
  if (scratch.length < plain.length) scratch = Buffer.allocUnsafe(plain.length);
  let size = 0;
  try {
    // A destination smaller than the input: zstd refuses when the frame would not fit, which is
    // exactly when compression does not pay (random or already compressed data).
    if (plain.length > 1)
      size = cctx.compress(scratch.subarray(0, plain.length - 1), plain, workerData.level);
  } catch {
    size = 0;
  }
  // Over the chunk's own bytes, hashed by now: a fresh buffer per frame, zeroed by the kernel and
  // left to the main thread's garbage collector, cost more than the copy.
  if (size > 0) plain.set(scratch.subarray(0, size));
  port.postMessage({ job, size });
}
