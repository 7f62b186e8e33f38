import { gear, masks, type ChunkParams } from './gear.ts';
import { leb, name, preamble, section, vec } from './wasm-encoding.ts';

// The chunker's scan for a cut, in WebAssembly over a buffer in the module's memory: the same rule as
// cutFrom (chunker.ts, the reference, and docs/FORMAT.md), three times as fast as V8 made that loop
// (0.55 against 1.7 s per GiB of mixed data, measured side by side), and it runs on the capture's main
// thread, which every other step of a first backup waits for. The module is ten instructions,
// assembled below rather than shipped as a binary: what it does can be read here.
//
//   scan(i, end, h, mask) -> i32      memory: gear[0..255] as i32 at 0, the data after it
//     loop: if i >= end: $h = h; return -1
//           h = (h << 1) + gear[mem8[i]]; i += 1
//           if (h & mask) != 0: continue
//           $h = h; return i

/** Where the data starts in the module's memory: after the gear table. */
const dataAt = 1024;
const page = 64 * 1024;

const op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  ret: 0x0f,
  get: 0x20,
  set: 0x21,
  setGlobal: 0x24,
  load: 0x28,
  load8u: 0x2d,
  const: 0x41,
  geU: 0x4f,
  add: 0x6a,
  and: 0x71,
  shl: 0x74,
  void: 0x40,
  i32: 0x7f,
};
const [i, end, h, mask] = [0, 1, 2, 3];

const scanBody = [
  0, // no locals beyond the parameters
  op.block, op.void,
  op.loop, op.void,
  op.get, i, op.get, end, op.geU, op.brIf, 1,
  op.get, h, op.const, 1, op.shl,
  op.get, i, op.load8u, 0, 0, op.const, 2, op.shl, op.load, 2, 0,
  op.add, op.set, h,
  op.get, i, op.const, 1, op.add, op.set, i,
  op.get, h, op.get, mask, op.and, op.brIf, 0,
  op.get, h, op.setGlobal, 0, op.get, i, op.ret,
  op.end,
  op.end,
  op.get, h, op.setGlobal, 0, op.const, 0x7f, // -1
  op.end,
]; // prettier-ignore

const module = new WebAssembly.Module(
  Uint8Array.from([
    ...preamble,
    ...section(1, vec([[0x60, ...vec([[op.i32], [op.i32], [op.i32], [op.i32]]), ...vec([[op.i32]])]])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, 1]])),
    ...section(6, vec([[op.i32, 1, op.const, 0, op.end]])),
    ...section(
      7,
      vec([
        [...name('memory'), 2, 0],
        [...name('h'), 3, 0],
        [...name('scan'), 0, 0],
      ]),
    ),
    ...section(10, vec([[...leb(scanBody.length), ...scanBody]])),
  ]),
);

interface Exports {
  memory: WebAssembly.Memory;
  h: WebAssembly.Global;
  scan(i: number, end: number, h: number, mask: number): number;
}

/** A buffer of `bytes` in a module's memory of its own, and the scan for cuts over it. */
export class GearScanner {
  /** What is scanned: put the bytes here. */
  readonly buf: Buffer;
  private readonly exports: Exports;

  constructor(bytes: number) {
    this.exports = new WebAssembly.Instance(module).exports as Exports;
    const { memory } = this.exports;
    memory.grow(Math.ceil((dataAt + bytes) / page) - memory.buffer.byteLength / page);
    // Little-endian, as WebAssembly reads it, whatever the host's order.
    const table = new DataView(memory.buffer, 0, dataAt);
    for (const [b, v] of gear().entries()) table.setInt32(4 * b, v, true);
    this.buf = Buffer.from(memory.buffer, dataAt, bytes);
  }

  /** cutFrom(this.buf, start, from, end, params), alike in every case. */
  cutFrom(start: number, from: number, end: number, params: ChunkParams): number | undefined {
    const { small, large } = masks(params.avg);
    const stop = Math.min(end, start + params.max);
    const normal = Math.min(start + params.avg, stop);
    const g = gear();
    const data = this.buf;
    let at = Math.max(from, start + params.min);
    let hash = 0;
    for (let j = Math.max(start + params.min, at - 32); j < at; j++) hash = ((hash << 1) + g[data[j]!]!) | 0;
    const { scan } = this.exports;
    if (at < normal) {
      const cut = scan(dataAt + at, dataAt + normal, hash, small);
      if (cut >= 0) return cut - dataAt - start;
      hash = this.exports.h.value as number;
      at = normal;
    }
    if (at < stop) {
      const cut = scan(dataAt + at, dataAt + stop, hash, large);
      if (cut >= 0) return cut - dataAt - start;
    }
    return stop === start + params.max ? params.max : undefined;
  }
}
