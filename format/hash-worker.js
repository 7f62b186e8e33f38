// A hashing thread: the SHA-256 of every file of a tar stream, from shared tar buffers and the op
// lists the main thread makes while parsing them (archive-writer.ts, and archive-reader.ts where the
// file-system thread, unpack-writer.js, gets the same lists at the same time). SHA-256 costs about
// 0.6 s of CPU per GB here: on the main thread it held up everything else on both sides. Plain
// JavaScript so that it starts in ~30 ms (see unpack-writer.js).
//
// workerData: { slots }, the shared buffers. In: { slot, ops, copies } where the ops that matter
// here are ['open', entry, ...] (a file starts), ['write', start, end] (its bytes slot[start, end),
// or copies[-start - 1] when start < 0) and ['close', entry, ...] (it ends); or { t: 'sync', id }.
// Out: { t: 'done', slot, digests } with digests as flat [entry, hex] pairs, { t: 'synced', id }.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

const port = parentPort;
const slots = workerData.slots.map((sab) => Buffer.from(sab));
let hash;

port.on('message', (m) => {
  if (m.t === 'sync') {
    port.postMessage({ t: 'synced', id: m.id });
    return;
  }
  const view = slots[m.slot];
  const digests = [];
  for (const op of m.ops) {
    if (op[0] === 'write') hash.update(op[1] < 0 ? m.copies[-op[1] - 1] : view.subarray(op[1], op[2]));
    else if (op[0] === 'open') hash = createHash('sha256');
    else if (op[0] === 'close') digests.push(op[1], hash.digest('hex'));
  }
  port.postMessage({ t: 'done', slot: m.slot, digests });
});
