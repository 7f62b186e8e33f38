import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { DecryptStream } from './container-opener.ts';
import { EncryptStream } from './container-sealer.ts';
import type { KeySource } from './data-key.ts';
import { SnapshotFormatError } from './format-error.ts';
import { maxManifestBytes, type Manifest } from './manifest.ts';
import { parseManifest } from './manifest-schema.ts';

/** The manifest object: the manifest's JSON in its own stream under the snapshot's data key. */
export async function sealManifest(manifest: Manifest, publicKey: Buffer, dataKey: Buffer): Promise<Buffer> {
  const enc = new EncryptStream({ publicKey, dataKey, compression: 'none' });
  return buffer(Readable.from([Buffer.from(JSON.stringify(manifest))]).pipe(enc));
}

export async function openManifest(
  sealed: Buffer,
  key: KeySource,
  expectedKeyId?: Buffer,
): Promise<Manifest> {
  if (sealed.length > maxManifestBytes)
    throw new SnapshotFormatError(
      'malformed_manifest',
      `the manifest object has ${sealed.length} bytes, more than the ${maxManifestBytes} a manifest may`,
    );
  const json = await buffer(Readable.from([sealed]).pipe(new DecryptStream(key, expectedKeyId)));
  let document: unknown;
  try {
    document = JSON.parse(json.toString('utf8'));
  } catch {
    throw new SnapshotFormatError('malformed_manifest', 'the manifest object does not hold JSON');
  }
  return parseManifest(document);
}
