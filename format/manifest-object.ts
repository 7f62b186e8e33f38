import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { DecryptStream, EncryptStream, type KeySource } from './container.ts';
import type { Manifest } from './manifest.ts';

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
  const json = await buffer(Readable.from([sealed]).pipe(new DecryptStream(key, expectedKeyId)));
  const manifest = JSON.parse(json.toString('utf8')) as Manifest;
  if (
    manifest.format !== 'strackt-snapshot' ||
    manifest.formatVersion !== 1 ||
    !Array.isArray(manifest.entries)
  ) {
    throw new Error('the manifest object does not hold a version 1 strackt manifest');
  }
  return manifest;
}
