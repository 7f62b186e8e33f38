// Every way a version-2 object can be refused, each named so a caller can tell damage (never retried)
// from a wrong key (ask for the right one) or a bucket still being written (truncated).

export type FormatV2ErrorKind =
  | 'not_a_pack'
  | 'unsupported_version'
  | 'wrong_key'
  | 'header_altered'
  | 'blob_altered'
  | 'chunk_mismatch'
  | 'chunk_missing'
  | 'corrupt_framing'
  | 'truncated'
  | 'malformed_manifest';

/** A stored copy of a chunk: its id (hex) and the pack holding it. */
export interface ChunkCopy {
  chunkId: string;
  packId: string;
}

export class FormatV2Error extends Error {
  override name = 'FormatV2Error';
  /** The stored copies found damaged, where the reader knows them (a restore reading its packs). */
  readonly copies: ChunkCopy[] = [];
  constructor(
    readonly kind: FormatV2ErrorKind,
    message: string,
  ) {
    super(message);
  }
}
