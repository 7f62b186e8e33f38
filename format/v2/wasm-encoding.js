// The few pieces of WebAssembly's binary encoding that strackt's hand-assembled modules need
// (gear-scan.ts, keyed-blake2b.js). Plain JavaScript: the chunk threads (chunk-worker.js) load it
// without a TypeScript loader.
import { Buffer } from 'node:buffer';

/** An unsigned LEB128 number. */
export function leb(n) {
  const out = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
}

/** A signed LEB128 number of 64 bits (a BigInt): the immediate of i64.const. */
export function sleb64(value) {
  let v = BigInt.asIntN(64, value);
  const out = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(b & 0x40)) || (v === -1n && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

/** A vector: its length, then its items. */
export const vec = (items) => [...leb(items.length), ...items.flat()];
/** A section: its id, its size, its body. */
export const section = (id, body) => [id, ...leb(body.length), ...body];
/** A name, as imports and exports give them. */
export const name = (s) => [...leb(s.length), ...Buffer.from(s, 'ascii')];
/** The preamble of a module: its magic and version. */
export const preamble = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
