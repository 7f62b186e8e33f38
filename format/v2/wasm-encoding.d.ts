export function leb(n: number): number[];
export function sleb64(value: bigint): number[];
export function vec(items: number[][]): number[];
export function section(id: number, body: number[]): number[];
export function name(s: string): number[];
export const preamble: number[];
