import * as z from '../common/zod-mini.ts';
import { SnapshotFormatError } from './format-error.ts';
import type { Manifest } from './manifest.ts';

// What a reader accepts of a manifest, every field bounded: a server's agent made it, and a forged one
// (negative or fractional sizes, a billion entries) must fail here, not in the free-space check or the
// unpack that trusts its figures. The shape is docs/FORMAT.md's.

/** Beyond what maxManifestBytes can hold anyway; more is refused, not attempted. */
export const maxManifestEntries = 1_000_000;

const bytes = z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER));
const id = z.string().check(z.regex(/^[a-z]+_[A-Za-z0-9_-]{1,60}$/));
const name = z.string().check(z.minLength(1), z.maxLength(255));
const path = z.string().check(
  z.minLength(1),
  z.maxLength(4096),
  z.refine((p) => !p.includes('\0'), 'has a NUL'),
);
const owner = z.int().check(z.minimum(0), z.maximum(2 ** 32 - 1));

const entry = z.strictObject({
  path,
  type: z.enum(['file', 'directory', 'symlink', 'hardlink']),
  mode: z.int().check(z.minimum(0), z.maximum(0o7777)),
  uid: owner,
  gid: owner,
  mtime: z.number().check(z.minimum(-(2 ** 40)), z.maximum(2 ** 40)),
  size: z.optional(bytes),
  sha256: z.optional(z.string().check(z.regex(/^[0-9a-f]{64}$/))),
  target: z.optional(path),
});

export const manifestSchema = z.strictObject({
  format: z.literal('strackt-snapshot'),
  formatVersion: z.literal(1),
  snapshotId: id,
  teamId: id,
  environmentId: id,
  environmentName: name,
  sourceServerId: id,
  createdAt: z.iso.datetime({ offset: true }),
  keyId: z.string().check(z.regex(/^[0-9a-f]{2,128}$/)),
  services: z
    .array(z.strictObject({ name, volumes: z.array(name).check(z.maxLength(1000)) }))
    .check(z.maxLength(1000)),
  volumes: z
    .array(
      z.strictObject({ name, entries: z.int().check(z.minimum(0), z.maximum(maxManifestEntries)), bytes }),
    )
    .check(z.maxLength(1000)),
  entries: z.array(entry).check(z.maxLength(maxManifestEntries)),
  data: z.strictObject({ object: name, tarBytes: bytes }),
});

/** The manifest, or the first thing wrong with it, named by its field (e.g. entries.7.size). */
export function parseManifest(value: unknown): Manifest {
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new SnapshotFormatError(
    'malformed_manifest',
    `the manifest is malformed: ${issue.path.join('.') || 'the document'}: ${issue.message}`,
  );
}
