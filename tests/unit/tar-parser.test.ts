import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { it } from 'node:test';
import { TarFormatError, TarParser, type TarHeader } from '../../format/tar-parser.ts';
import { craftTar, type CraftedEntry } from '../helpers/craft-tar.ts';

async function headersOf(entries: CraftedEntry[]): Promise<TarHeader[]> {
  const seen: TarHeader[] = [];
  await pipeline(
    Readable.from([craftTar(entries)]),
    new TarParser((h) => {
      seen.push(h);
      return {};
    }),
  );
  return seen;
}

it('reads pax numbers: sizes, ids and a fractional or pre-1970 mtime', async () => {
  const [h] = await headersOf([
    { path: 'f', data: Buffer.from('abc'), pax: { size: '3', uid: '4000000000', mtime: '-86400.25' } },
  ]);
  assert.equal(h!.size, 3);
  assert.equal(h!.uid, 4_000_000_000);
  assert.equal(h!.mtime, -86400.25);
});

it('refuses numbers a lenient reading would have made something else of', async () => {
  const forged: [string, CraftedEntry][] = [
    ['an octal size with garbage after the digits', { path: 'f', raw: { size: '0000000012x\0' } }],
    ['a size in decimal digits octal does not have', { path: 'f', raw: { size: '00000000089\0' } }],
    ['a negative base-256 size', { path: 'f', raw: { size: Buffer.from([0xff, ...Array(11).fill(0xff)]) } }],
    [
      'a base-256 size beyond 2^53',
      { path: 'f', raw: { size: Buffer.from([0x80, ...Array(11).fill(0xff)]) } },
    ],
    ['a mode that is not a number', { path: 'f', raw: { mode: '-000644\0' } }],
    ['a pax size in exponent form', { path: 'f', pax: { size: '1e3' } }],
    ['a negative pax size', { path: 'f', pax: { size: '-1' } }],
    ['a pax size with a fraction', { path: 'f', pax: { size: '1.5' } }],
    ['a pax uid with a sign', { path: 'f', pax: { uid: '+0' } }],
    ['a pax uid in hex', { path: 'f', pax: { uid: '0x10' } }],
    ['a pax mtime with spaces', { path: 'f', pax: { mtime: ' 17' } }],
    ['a pax size beyond 2^53', { path: 'f', pax: { size: '9007199254740993' } }],
  ];
  for (const [what, entry] of forged)
    await assert.rejects(headersOf([entry]), (err: Error) => err instanceof TarFormatError, what);
});

it('refuses pax records whose length or form is off', async () => {
  const record = (text: string) => {
    const body = Buffer.from(text);
    const entry: CraftedEntry = { path: 'PaxHeaders/x', typeflag: 'x', data: body };
    return [entry, { path: 'f' }];
  };
  for (const text of ['12 size=3\n', ' 9 size=3\n', '10 size=3x', '9 =value\n', '0x9 size=\n'])
    await assert.rejects(headersOf(record(text)), TarFormatError, JSON.stringify(text));
  // The control: a well-formed record is read.
  const [h] = await headersOf(record('8 uid=7\n'));
  assert.equal(h?.uid, 7);
});
