// The snapshot format's failures, one kind per case of docs/FORMAT.md: the container's and the
// manifest's alike, so a caller maps them to one error of its own.
export type FormatErrorKind =
  | 'not_a_snapshot'
  | 'unsupported_version'
  | 'wrong_key'
  | 'header_altered'
  | 'chunk_altered'
  | 'corrupt_framing'
  | 'truncated'
  | 'trailing_data'
  | 'malformed_manifest';

export class SnapshotFormatError extends Error {
  override name = 'SnapshotFormatError';
  constructor(
    readonly kind: FormatErrorKind,
    message: string,
  ) {
    super(message);
  }
}
