// The few pieces of WebAssembly's binary encoding that the chunker's hand-assembled scan needs
// (gear-scan.ts).

/** An unsigned LEB128 number. */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
}

/** A vector: its length, then its items. */
export const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
/** A section: its id, its size, its body. */
export const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
/** A name, as imports and exports give them. */
export const name = (s: string): number[] => [...leb(s.length), ...Buffer.from(s, 'ascii')];
/** The preamble of a module: its magic and version. */
export const preamble = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
