import { sealDataKey } from './data-key.ts';
import { SnapshotFormatError } from './format-error.ts';
import { keyIdOf } from './team-key.ts';

// The container's header fields and chunk framing, written by container-sealer.ts and read by
// container-opener.ts. Layout and meaning of every field: docs/FORMAT.md ("Container").
const magic = Buffer.from('STRKSNAP', 'ascii');
const formatVersion = 1;
const cipherSecretstream = 1;
export const headerBytes = 136;
export const maxChunkSize = 16 * 1024 * 1024;
export const defaultChunkSize = 1024 * 1024;
export { ABYTES, TAG_FINAL, TAG_MESSAGE } from './secretstream.ts';

export type Compression = 'none' | 'zstd';

export interface ContainerHeader {
  compression: Compression;
  chunkSize: number;
  keyId: Buffer;
}

/** A header with every field but the secretstream header (its last 24 bytes), which the sealer's stream writes. */
export function newHeader(
  publicKey: Buffer,
  dataKey: Buffer,
  compression: Compression,
  chunkSize: number,
): Buffer {
  const header = Buffer.alloc(headerBytes);
  magic.copy(header, 0);
  header[8] = formatVersion;
  header[9] = cipherSecretstream;
  header[10] = compression === 'zstd' ? 1 : 0;
  header[11] = 0;
  header.writeUInt32BE(chunkSize, 12);
  keyIdOf(publicKey).copy(header, 16);
  sealDataKey(dataKey, publicKey).copy(header, 32);
  return header;
}

/** Checks the fixed fields of a container header and reads the rest. */
export function parseHeader(header: Buffer): ContainerHeader {
  if (header.length < headerBytes || !header.subarray(0, 8).equals(magic)) {
    throw new SnapshotFormatError('not_a_snapshot', 'not a strackt snapshot (bad magic)');
  }
  if (header[8] !== formatVersion) {
    throw new SnapshotFormatError('unsupported_version', `unsupported snapshot format version ${header[8]}`);
  }
  if (header[9] !== cipherSecretstream || header[11] !== 0 || (header[10] !== 0 && header[10] !== 1)) {
    throw new SnapshotFormatError(
      'header_altered',
      'unknown cipher, compression or flags in the snapshot header',
    );
  }
  const chunkSize = header.readUInt32BE(12);
  if (chunkSize < 1 || chunkSize > maxChunkSize) {
    throw new SnapshotFormatError(
      'header_altered',
      `chunk size ${chunkSize} out of range in the snapshot header`,
    );
  }
  return {
    compression: header[10] === 1 ? 'zstd' : 'none',
    chunkSize,
    keyId: Buffer.from(header.subarray(16, 32)),
  };
}
