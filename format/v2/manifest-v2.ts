import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import * as z from '../../common/zod-mini.ts';
import { DecryptStream } from '../container-opener.ts';
import { EncryptStream } from '../container-sealer.ts';
import type { KeySource } from '../data-key.ts';
import { manifestSchema, maxManifestEntries } from '../manifest-schema.ts';
import { zstd } from '../zstd-binding.ts';
import { chunkIdScheme } from './chunk-id.ts';
import { chunkParams } from './chunker.ts';
import { FormatV2Error } from './errors.ts';

// The version-2 manifest (docs/FORMAT.md, "Manifest, version 2"): v1's, less the data object, each
// regular file listing its chunk ids in order. Where chunks lie is not in it: packs get repacked, and
// a snapshot must stay valid through that. It is a v1 container of zstd-compressed JSON (hex ids
// compress to half), under its own data key.

/**
 * Some 2 TB of files at the 1 MiB average, and what a restoring agent can hold whole. The sealed
 * object, and its JSON once decompressed, are bounded before either is read.
 */
export const maxChunkRefs = 2_000_000;
export const maxManifestV2Bytes = 256 * 1024 * 1024;
const maxManifestV2Json = 512 * 1024 * 1024;

const v1Entry = manifestSchema.shape.entries.def.element;
const chunkId = z.string().check(z.regex(/^[0-9a-f]{64}$/));
const entry = z.extend(z.omit(v1Entry, { sha256: true }), {
  chunks: z.optional(z.array(chunkId).check(z.maxLength(maxChunkRefs))),
});
const bytes = z.int().check(z.minimum(1), z.maximum(2 ** 30));

export const manifestV2Schema = z
  .extend(z.omit(manifestSchema, { formatVersion: true, entries: true, data: true }), {
    formatVersion: z.literal(2),
    // The chunk ids' scheme, named: ids made any other way (format 2's first, keyed BLAKE2b) would
    // fail every chunk's check, where this says at once which it is.
    chunking: z.strictObject({ min: bytes, avg: bytes, max: bytes, id: z.literal(chunkIdScheme) }),
    entries: z.array(entry).check(z.maxLength(maxManifestEntries)),
  })
  .check(
    z.superRefine((m, ctx) => {
      let refs = 0;
      m.entries.forEach((e, k) => {
        const isFile = e.type === 'file';
        if (isFile !== (e.chunks !== undefined) || isFile !== (e.size !== undefined))
          ctx.addIssue({
            code: 'custom',
            path: ['entries', k],
            message: 'files, and only files, list chunks and a size',
          });
        refs += e.chunks?.length ?? 0;
      });
      if (refs > maxChunkRefs)
        ctx.addIssue({
          code: 'custom',
          path: ['entries'],
          message: `more than ${maxChunkRefs} chunk references`,
        });
    }),
  );

export type ManifestV2 = z.infer<typeof manifestV2Schema>;
/** What every capture writes: the chunker's parameters and the chunk ids' scheme. */
export const manifestChunking: Readonly<ManifestV2['chunking']> = Object.freeze({
  ...chunkParams,
  id: chunkIdScheme,
});
export type ManifestV2Entry = ManifestV2['entries'][number];

export function parseManifestV2(value: unknown): ManifestV2 {
  const parsed = manifestV2Schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new FormatV2Error(
    'malformed_manifest',
    `the manifest is malformed: ${issue.path.join('.') || 'the document'}: ${issue.message}`,
  );
}

export async function sealManifestV2(
  manifest: ManifestV2,
  publicKey: Buffer,
  dataKey: Buffer,
): Promise<Buffer> {
  const json = Buffer.from(JSON.stringify(manifest));
  if (json.length > maxManifestV2Json) throw new RangeError('manifest too large for the format');
  // zstd's compress bound is the input plus 1/256 of it plus at most 64 bytes.
  const room = Buffer.allocUnsafe(json.length + (json.length >> 8) + 1024);
  const compressed = room.subarray(0, zstd().compress(room, json, 3));
  const enc = new EncryptStream({ publicKey, dataKey, compression: 'zstd' });
  return buffer(Readable.from([compressed]).pipe(enc));
}

export async function openManifestV2(
  sealed: Buffer,
  key: KeySource,
  expectedKeyId?: Buffer,
): Promise<ManifestV2> {
  if (sealed.length > maxManifestV2Bytes)
    throw new FormatV2Error('malformed_manifest', `a manifest object of ${sealed.length} bytes is too large`);
  const decrypt = new DecryptStream(key, expectedKeyId);
  const plain = await buffer(Readable.from([sealed]).pipe(decrypt));
  let json = plain;
  if (decrypt.containerHeader?.compression === 'zstd') {
    let size: number | null = null;
    try {
      size = zstd().getFrameContentSize(plain);
    } catch {
      // Reported below, as any frame without a usable size.
    }
    if (size === null || size > maxManifestV2Json)
      throw new FormatV2Error('malformed_manifest', 'the manifest is no zstd frame of a bounded size');
    json = Buffer.allocUnsafe(size);
    let n = -1;
    try {
      n = zstd().decompress(json, plain);
    } catch {
      // Reported below, as any frame that does not give its declared size.
    }
    if (n !== size) throw new FormatV2Error('malformed_manifest', 'the manifest zstd frame is corrupt');
  }
  let document: unknown;
  try {
    document = JSON.parse(json.toString('utf8'));
  } catch {
    throw new FormatV2Error('malformed_manifest', 'the manifest object does not hold JSON');
  }
  return parseManifestV2(document);
}
