// Keyed BLAKE2b-256 (RFC 7693): the chunk id's hash (docs/FORMAT.md, "Chunk ids"), with its
// compression function in WebAssembly, assembled below. Every byte a capture reads is hashed, and
// every chunk a restore writes: libsodium's BLAKE2b took 1.5 s per GiB on the benchmark machine
// (and its system's libsodium as much), V8's code for this module 0.9 s, as fast as CPython's
// hashlib (measured side by side); the bytes are the same, checked against libsodium in the tests.
// Plain JavaScript: the chunk threads (chunk-worker.js) load it without a TypeScript loader.
//
//   compress(at, n, t, last)   memory: the state h[0..7] (i64) at 0, a key block, then the data
//     n blocks of 128 bytes from at, t the bytes hashed before them: each block's counter is t plus
//     128 per block so far, but with last set (and n = 1) the block is the final one and t its
//     counter as given (every byte hashed, the padding not).
import { leb, name, preamble, section, sleb64, vec } from './wasm-encoding.js';

const { WebAssembly } = globalThis;

const iv = [
  0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n,
]; // prettier-ignore
const sigma = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

const op = {
  block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br: 0x0c, brIf: 0x0d,
  get: 0x20, set: 0x21, i64load: 0x29, i64store: 0x37, i32const: 0x41, i64const: 0x42,
  i32eqz: 0x45, i32eq: 0x46, i32add: 0x6a, i32sub: 0x6b, i32and: 0x71,
  i64add: 0x7c, i64xor: 0x85, i64rotr: 0x8a, void: 0x40, i32: 0x7f, i64: 0x7e,
}; // prettier-ignore
// The parameters, then the working vector v and the block's words m as locals.
const [at, n, t, last] = [0, 1, 2, 3];
const v = (i) => 4 + i;
const m = (i) => 20 + i;

function compressBody() {
  const body = [];
  const emit = (...codes) => body.push(...codes);
  const mix = (a, b, c, d, x, y) => {
    emit(op.get, v(a), op.get, v(b), op.i64add, op.get, m(x), op.i64add, op.set, v(a));
    emit(op.get, v(d), op.get, v(a), op.i64xor, op.i64const, 32, op.i64rotr, op.set, v(d));
    emit(op.get, v(c), op.get, v(d), op.i64add, op.set, v(c));
    emit(op.get, v(b), op.get, v(c), op.i64xor, op.i64const, 24, op.i64rotr, op.set, v(b));
    emit(op.get, v(a), op.get, v(b), op.i64add, op.get, m(y), op.i64add, op.set, v(a));
    emit(op.get, v(d), op.get, v(a), op.i64xor, op.i64const, 16, op.i64rotr, op.set, v(d));
    emit(op.get, v(c), op.get, v(d), op.i64add, op.set, v(c));
    emit(op.get, v(b), op.get, v(c), op.i64xor, op.i64const, 63, op.i64rotr, op.set, v(b));
  };
  // The final block: the n-th, when last is set.
  const final = [op.get, n, op.i32const, 1, op.i32eq, op.get, last, op.i32and];
  emit(op.block, op.void, op.loop, op.void);
  emit(op.get, n, op.i32eqz, op.brIf, 1);
  emit(...final, op.i32eqz, op.if, op.void);
  emit(op.get, t, op.i64const, ...sleb64(128n), op.i64add, op.set, t, op.end);
  for (let i = 0; i < 16; i++) emit(op.get, at, op.i64load, 3, ...leb(8 * i), op.set, m(i));
  for (let i = 0; i < 8; i++) emit(op.i32const, 0, op.i64load, 3, ...leb(8 * i), op.set, v(i));
  for (let i = 0; i < 8; i++) emit(op.i64const, ...sleb64(iv[i]), op.set, v(8 + i));
  // The counter's high word stays 0: no chunk comes near 2^64 bytes.
  emit(op.get, v(12), op.get, t, op.i64xor, op.set, v(12));
  emit(...final, op.if, op.void);
  emit(op.get, v(14), op.i64const, ...sleb64(-1n), op.i64xor, op.set, v(14), op.end);
  for (let r = 0; r < 12; r++) {
    const s = sigma[r % 10];
    mix(0, 4, 8, 12, s[0], s[1]);
    mix(1, 5, 9, 13, s[2], s[3]);
    mix(2, 6, 10, 14, s[4], s[5]);
    mix(3, 7, 11, 15, s[6], s[7]);
    mix(0, 5, 10, 15, s[8], s[9]);
    mix(1, 6, 11, 12, s[10], s[11]);
    mix(2, 7, 8, 13, s[12], s[13]);
    mix(3, 4, 9, 14, s[14], s[15]);
  }
  for (let i = 0; i < 8; i++) {
    emit(op.i32const, 0, op.i32const, 0, op.i64load, 3, ...leb(8 * i));
    emit(op.get, v(i), op.i64xor, op.get, v(8 + i), op.i64xor, op.i64store, 3, ...leb(8 * i));
  }
  emit(op.get, at, op.i32const, ...leb(128), op.i32add, op.set, at);
  emit(op.get, n, op.i32const, 1, op.i32sub, op.set, n, op.br, 0, op.end, op.end, op.end);
  return [...vec([[32, op.i64]]), ...body];
}

/** Compiled at the first hasher's making: a process that hashes nothing pays nothing for it. */
let module;
function compiled() {
  if (module) return module;
  const body = compressBody();
  module = new WebAssembly.Module(
    Uint8Array.from([
      ...preamble,
      ...section(1, vec([[0x60, ...vec([[op.i32], [op.i32], [op.i64], [op.i32]]), ...vec([])]])),
      ...section(3, vec([[0]])),
      ...section(5, vec([[0x00, 1]])),
      ...section(
        7,
        vec([
          [...name('memory'), 2, 0],
          [...name('compress'), 0, 0],
        ]),
      ),
      ...section(10, vec([[...leb(body.length), ...body]])),
    ]),
  );
  return module;
}

const blockBytes = 128;
const keyAt = 64;
const dataAt = keyAt + blockBytes;
/** The data is hashed in pieces of this size, copied into the module's one page of memory. */
const pieceBytes = 32 * 1024;

/**
 * A hasher of keyed BLAKE2b-256 with `key` (16 to 64 bytes, as libsodium takes), as libsodium's crypto_generichash(out,
 * data, key) with a 32-byte out: hash(data, out?) answers the 32 bytes, written into `out` if given.
 */
export function keyedBlake2b(key) {
  if (key.length < 16 || key.length > 64) throw new RangeError('keyedBlake2b: a key is 16 to 64 bytes');
  const { memory, compress } = new WebAssembly.Instance(compiled()).exports;
  const mem = new Uint8Array(memory.buffer);
  const h0 = [...iv];
  // The parameter block: digest length 32, key length, fanout and depth 1.
  h0[0] ^= 0x01010000n | (BigInt(key.length) << 8n) | 32n;
  const view = new DataView(memory.buffer);
  return (data, out = new Uint8Array(32)) => {
    for (let i = 0; i < 8; i++) view.setBigUint64(8 * i, h0[i], true);
    mem.fill(0, keyAt, keyAt + blockBytes);
    mem.set(key, keyAt);
    if (data.length === 0) compress(keyAt, 1, BigInt(blockBytes), 1);
    else {
      compress(keyAt, 1, 0n, 0);
      let done = 0;
      // Every block but the last is compressed as it comes; the last one, padded with zeros, is final.
      for (; data.length - done > pieceBytes; done += pieceBytes) {
        mem.set(data.subarray(done, done + pieceBytes), dataAt);
        compress(dataAt, pieceBytes / blockBytes, BigInt(blockBytes + done), 0);
      }
      const rest = data.length - done;
      const blocks = Math.ceil(rest / blockBytes);
      mem.set(data.subarray(done), dataAt);
      mem.fill(0, dataAt + rest, dataAt + blocks * blockBytes);
      compress(dataAt, blocks - 1, BigInt(blockBytes + done), 0);
      compress(dataAt + (blocks - 1) * blockBytes, 1, BigInt(blockBytes + data.length), 1);
    }
    for (let i = 0; i < 32; i++) out[i] = mem[i];
    return out;
  };
}
