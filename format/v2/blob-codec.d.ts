import type * as ZstdBinding from 'zstd-napi/binding.js';
import type { FormatV2ErrorKind } from './errors.ts';

export const encodingRaw: 0;
export const encodingZstd: 1;

export function compressChunk(
  cctx: InstanceType<typeof ZstdBinding.CCtx>,
  into: Buffer,
  plain: Uint8Array,
  level: number,
): number;

export function sealBlob(state: Buffer, out: Buffer, message: Buffer, dataKey: Buffer, id: Buffer): void;

export function openBlob(
  ctx: {
    state: Buffer;
    tag: Buffer;
    zstd: typeof ZstdBinding;
    dctx: InstanceType<typeof ZstdBinding.DCtx>;
  },
  dataKey: Buffer,
  id: Buffer,
  blob: Buffer,
  o: {
    message: Buffer;
    roomFor: (size: number) => Buffer | undefined;
    maxChunkBytes: number;
    rawLength?: number;
    dedupKey?: Buffer;
  },
):
  | { plain: Buffer; refused?: undefined }
  | { plain?: undefined; refused: { kind: FormatV2ErrorKind; message: string } };
