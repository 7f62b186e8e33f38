// A thread of the format-2 capture (chunk-threads.ts): the keyed hash (the chunk id) and the zstd
// frame of the chunks it is sent, read from the capture's shared batch buffers, with one zstd context
// for all of them (zstd through node:zlib makes a context per call: ~2.5 ms of allocation per chunk,
// measured, part of it on the main thread). Hashes go first: the capture waits for ids to ask the
// destination about a batch, while frames are only needed once the batch before is packed. Plain
// JavaScript so that it starts in ~30 ms (see ../unpack-writer.js).
// Then each is sealed into its pack ('seal'), a blob as docs/FORMAT.md ("Blob") says (blob-codec.js,
// which blob.ts's BlobSealer and BlobOpener use too), written where the pack buffer (an arena too) holds its place: sealing on the
// main thread was the largest step left there, which every other step waits for.
// A restore sends its blobs the same way ('open'), from the buffers its readers fetch into: each opened,
// its chunk checked against its id and written where the files want it.
//
// workerData: { arenas, dedupKey, level, maxChunkBytes, stopped }, arenas being the shared buffers,
//   stopped an Int32Array set to 1 when the opens still queued are not to be written (a restore that
//   failed, or stopped while its disk still had room, writes no more).
// In: { t: 'hash' | 'compress', job, arena, offset, length }, or
//   { t: 'seal', job, arena, offset, length, size, key, id, out: { arena, at } } (size: the frame's,
//   0 for the chunk raw; key: the pack's data key; the byte before offset is free, and written), or
//   { t: 'open', job, arena, offset, length, key, id, rawLength, targets: [{ fd, at }] } (the blob,
//   its pack's data key), or 'close' once done.
// Out: { job, id } (hex), or { job, size }, the size of the frame now at the start of the chunk's
//   place in its arena, 0 when zstd does not shrink it (the chunk is left as it was), or for a seal
//   the blob's; for an open, { job, id } once written, or { job, refused: { kind, message } } (a
//   FormatV2Error's) for a blob that does not open as that chunk; or { job, error } (a file's).
import { Buffer } from 'node:buffer';
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setImmediate } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';
import { compressChunk, encodingRaw, encodingZstd, openBlob, sealBlob } from './blob-codec.js';
import { chunkIdOf } from './chunk-id-hash.js';

const port = parentPort;
const require = createRequire(import.meta.url);
const sodium = require('sodium-native');
const zstd = require('zstd-napi/binding');
const cctx = new zstd.CCtx();
const arenas = workerData.arenas.map((sab) => Buffer.from(sab));
const { dedupKey } = workerData;
// Every chunk a thread hashes or opens is checked against its id with it: never without one.
if (!dedupKey) throw new Error('chunk-worker: started without the dedup key');
let scratch = Buffer.allocUnsafe(0);
const state = Buffer.alloc(sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES);
const opening = { state, tag: Buffer.alloc(1), zstd, dctx: new zstd.DCtx() };
const header = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES;
const abytes = sodium.crypto_secretstream_xchacha20poly1305_ABYTES;
const { maxChunkBytes, stopped } = workerData;
let plainRoom = Buffer.allocUnsafe(0);
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
    try {
      if (m) jobs[m.t](m, arenas[m.arena].subarray(m.offset, m.offset + m.length));
    } finally {
      // A seal's or an open's data key, the message's own copy (of its own buffer, see
      // chunk-threads.ts), and the stream state derived from it: wiped once the job is done.
      if (m?.key) {
        new Uint8Array(m.key.buffer).fill(0);
        state.fill(0);
      }
    }
    if (hashes.length || seals.length || frames.length) schedule();
    // Between two jobs: the one place where stopping cannot cut a call short.
    else if (closing) port.close();
  });
}

function hash({ job }, plain) {
  port.postMessage({ job, id: chunkIdOf(dedupKey, plain).toString('hex') });
}

/**
 * A restore's blob, read into a reader's buffer: opened and its chunk checked as blob.ts's BlobOpener
 * does (blob-codec.js), then written at every target. All of it here, so that the main thread is left
 * fetching.
 */
function open({ job, key, id, rawLength, targets }, blob) {
  if (Atomics.load(stopped, 0)) return port.postMessage({ job, error: { message: 'the unpack stopped' } });
  // Opened in place, over the ciphertext after the header and the sealed tag byte: libsodium checks the
  // whole ciphertext's tag before it decrypts, and a thread's own message buffer was as large as the
  // largest blob it ever opened.
  const opened = openBlob(opening, keyOf(key), Buffer.from(id, 'hex'), blob, {
    message: blob.subarray(header + 1, Math.max(header + 1, blob.length - abytes + 1)),
    roomFor: (size) => {
      if (plainRoom.length < size) plainRoom = Buffer.allocUnsafe(size);
      return plainRoom.subarray(0, size);
    },
    maxChunkBytes,
    rawLength,
    dedupKey,
  });
  if (opened.refused) return port.postMessage({ job, refused: opened.refused });
  const { plain } = opened;
  try {
    for (const { fd, at } of targets)
      for (let done = 0; done < plain.length;)
        done += writeSync(fd, plain, done, plain.length - done, at + done);
  } catch (err) {
    return port.postMessage({ job, error: { message: err.message, code: err.code } });
  }
  port.postMessage({ job, id });
}

/** A job's data key as libsodium takes it: a view of the message's own copy, no other. */
const keyOf = (key) => Buffer.from(key.buffer, key.byteOffset, key.length);

function seal({ job, arena, offset, length, size, key, id, out }) {
  // [encoding byte, payload]: the byte before the chunk's place is the seal's to write, so the
  // message is sealed where it lies.
  const m = arenas[arena].subarray(offset - 1, offset + (size > 0 ? size : length));
  m[0] = size > 0 ? encodingZstd : encodingRaw;
  const blob = arenas[out.arena].subarray(out.at, out.at + header + m.length + abytes);
  sealBlob(state, blob, m, keyOf(key), Buffer.from(id, 'hex'));
  port.postMessage({ job, size: blob.length });
}

const jobs = { hash, compress, seal, open };

function compress({ job }, plain) {
  if (scratch.length < plain.length) scratch = Buffer.allocUnsafe(plain.length);
  const size = compressChunk(cctx, scratch, plain, workerData.level);
  // Over the chunk's own bytes, hashed by now: a fresh buffer per frame, zeroed by the kernel and
  // left to the main thread's garbage collector, cost more than the copy.
  if (size > 0) scratch.copy(plain, 0, 0, size);
  port.postMessage({ job, size });
}
