// Builds tar archives by hand, entry by entry, so tests can forge the hostile ones GNU tar never writes.

export interface CraftedEntry {
  path: string;
  typeflag?: string; // '0' file, '1' hardlink, '2' symlink, '5' directory, '3' '4' devices, '6' FIFO
  mode?: number;
  data?: Buffer;
  linkTarget?: string;
  uid?: number;
  gid?: number;
  mtime?: number;
  /** Records of a pax extended header written before the entry ('x'). */
  pax?: Record<string, string>;
  /** Header fields written as given instead of as octal numbers (to forge malformed ones). */
  raw?: Partial<Record<'mode' | 'uid' | 'size' | 'mtime', string | Buffer>>;
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

const fieldAt = { mode: [100, 8], uid: [108, 8], size: [124, 12], mtime: [136, 12] } as const;

function header(e: CraftedEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write(e.path.slice(0, 100), 0, 'utf8');
  block.write(octal(e.mode ?? 0o644, 8), 100, 'ascii');
  block.write(octal(e.uid ?? 0, 8), 108, 'ascii');
  block.write(octal(e.gid ?? 0, 8), 116, 'ascii');
  block.write(octal(size, 12), 124, 'ascii');
  block.write(octal(e.mtime ?? 1_700_000_000, 12), 136, 'ascii');
  for (const [name, value] of Object.entries(e.raw ?? {})) {
    const [at, length] = fieldAt[name as keyof typeof fieldAt];
    block.fill(0, at, at + length);
    (typeof value === 'string' ? Buffer.from(value, 'latin1') : value).copy(block, at, 0, length);
  }
  block.write(e.typeflag ?? '0', 156, 'ascii');
  block.write((e.linkTarget ?? '').slice(0, 100), 157, 'utf8');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(octal(sum, 7) + ' ', 148, 'ascii');
  return block;
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** "<length> key=value\n", the length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

export function craftTar(entries: CraftedEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const records = Buffer.from(
        Object.entries(e.pax)
          .map(([k, v]) => paxRecord(k, v))
          .join(''),
        'utf8',
      );
      parts.push(
        header({ path: 'PaxHeaders/x', typeflag: 'x' }, records.length),
        records,
        pad(records.length),
      );
    }
    const data = e.data ?? Buffer.alloc(0);
    parts.push(header(e, data.length), data, pad(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
