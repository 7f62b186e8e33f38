// A blob's sealing and opening (docs/FORMAT.md, "Blob"), shared by blob.ts (BlobSealer, BlobOpener)
// and the chunk threads (chunk-worker.js), which, plain JavaScript, load it without a TypeScript
// loader. The callers hold the secretstream state and zstd contexts, reused from blob to blob, and
// the buffers: the threads seal and open in the capture's and the restore's shared memory.
// libsodium's sizes are read at each call, not as the module loads: the agent's bundle loads
// libsodium at its first use (deploy/build-agent.mjs).
import sodium from 'sodium-native';
import { chunkIdOf } from './chunk-id-hash.js';

export const encodingRaw = 0;
export const encodingZstd = 1;

/**
 * The zstd frame of `plain` written to `into`, answering its size; 0 when zstd does not shrink the
 * chunk (it is then stored raw): the frame is given fewer bytes than the chunk, and zstd refuses when
 * it would not fit, which is exactly when compression does not pay (random or compressed data).
 */
export function compressChunk(cctx, into, plain, level) {
  if (plain.length <= 1) return 0;
  try {
    return cctx.compress(into.subarray(0, plain.length - 1), plain, level);
  } catch {
    return 0;
  }
}

/**
 * Seals `message` (its encoding byte, then the payload) as chunk `id`'s blob into `out`, which is
 * HEADERBYTES + message.length + ABYTES bytes: one TAG_FINAL message, the id as additional data.
 */
export function sealBlob(state, out, message, dataKey, id) {
  const header = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES;
  sodium.crypto_secretstream_xchacha20poly1305_init_push(state, out.subarray(0, header), dataKey);
  sodium.crypto_secretstream_xchacha20poly1305_push(
    state,
    out.subarray(header),
    message,
    id,
    sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
  );
}

/**
 * The chunk a blob holds, checked: `{ plain }`, or `{ refused: { kind, message } }` with the kind of
 * docs/FORMAT.md's error.
 * - ctx: `{ state, tag, zstd, dctx }`, the caller's secretstream state, a tag byte, zstd's binding
 *   and a decompression context of it.
 * - message: where the sealed message is decrypted, blob.length - HEADERBYTES - ABYTES bytes; it may
 *   lie over the blob itself, one byte on (libsodium checks the whole ciphertext before it decrypts).
 * - roomFor(size): where a zstd frame's `size` bytes are decoded, or undefined if the caller takes
 *   fewer (refused as no frame of a chunk's size).
 * - rawLength: when given, the chunk's length the index states.
 * - dedupKey: when given, the chunk must hash to its id. A blob authenticates under its pack's data
 *   key, which any holder of the team public key can make: only this proves the content is the chunk
 *   the manifest names.
 */
export function openBlob(ctx, dataKey, id, blob, { message, roomFor, maxChunkBytes, rawLength, dedupKey }) {
  const header = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES;
  const overhead = header + sodium.crypto_secretstream_xchacha20poly1305_ABYTES + 1;
  const short = id.toString('hex').slice(0, 16);
  const refused = (kind, text) => ({ refused: { kind, message: text } });
  if (blob.length < overhead || blob.length > overhead + maxChunkBytes)
    return refused('corrupt_framing', `blob ${short}: ${blob.length} bytes is no blob`);
  sodium.crypto_secretstream_xchacha20poly1305_init_pull(ctx.state, blob.subarray(0, header), dataKey);
  try {
    sodium.crypto_secretstream_xchacha20poly1305_pull(ctx.state, message, ctx.tag, blob.subarray(header), id);
  } catch {
    return refused('blob_altered', `blob ${short} failed authentication: altered or moved`);
  }
  if (ctx.tag[0] !== sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL)
    return refused('blob_altered', `blob ${short} is not final`);
  const payload = message.subarray(1);
  let plain = payload;
  if (message[0] === encodingZstd) {
    let size = null;
    try {
      size = ctx.zstd.getFrameContentSize(payload);
    } catch {
      size = null;
    }
    plain = size === null || size > maxChunkBytes ? undefined : roomFor(size);
    if (!plain) return refused('corrupt_framing', `blob ${short}: no zstd frame of a chunk's size`);
    let n = -1;
    try {
      n = ctx.dctx.decompress(plain, payload);
    } catch {
      n = -1;
    }
    if (n !== size) return refused('corrupt_framing', `blob ${short}: its zstd frame is corrupt`);
  } else if (message[0] !== encodingRaw)
    return refused('corrupt_framing', `blob ${short}: unknown encoding ${message[0]}`);
  if (rawLength !== undefined && plain.length !== rawLength)
    return refused('corrupt_framing', `chunk ${id.toString('hex')} has another size than indexed`);
  if (dedupKey && !chunkIdOf(dedupKey, plain).equals(id))
    return refused('chunk_mismatch', `blob ${short} holds other content than its id says`);
  return { plain };
}
