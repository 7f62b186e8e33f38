import { z } from 'zod';
import { SnapshotFormatError } from './format-error.ts';
import type { Manifest } from './manifest.ts';

// What a reader accepts of a manifest, every field bounded: a server's agent made it, and a forged one
// (negative or fractional sizes, a billion entries) must fail here, not in the free-space check or the
// unpack that trusts its figures. The shape is docs/FORMAT.md's.

/** Beyond what maxManifestBytes can hold anyway; more is refused, not attempted. */
export const maxManifestEntries = 1_000_000;

const bytes = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const id = z.string().regex(/^[a-z]+_[A-Za-z0-9_-]{1,60}$/);
const name = z.string().min(1).max(255);
const path = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'has a NUL');
const owner = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);

const entry = z.strictObject({
  path,
  type: z.enum(['file', 'directory', 'symlink', 'hardlink']),
  mode: z.number().int().min(0).max(0o7777),
  uid: owner,
  gid: owner,
  mtime: z
    .number()
    .finite()
    .min(-(2 ** 40))
    .max(2 ** 40),
  size: bytes.optional(),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  target: path.optional(),
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
  keyId: z.string().regex(/^[0-9a-f]{2,128}$/),
  services: z.array(z.strictObject({ name, volumes: z.array(name).max(1000) })).max(1000),
  volumes: z
    .array(z.strictObject({ name, entries: z.number().int().min(0).max(maxManifestEntries), bytes }))
    .max(1000),
  entries: z.array(entry).max(maxManifestEntries),
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
