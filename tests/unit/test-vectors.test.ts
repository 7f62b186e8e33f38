import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { it } from 'node:test';
import { DecryptStream } from '../../format/container-opener.ts';
import { fingerprintOf, parsePrintableSecretKey, publicKeyOf } from '../../format/team-key.ts';

const vector = (name: string) => readFileSync(new URL(`../../docs/test-vectors/${name}`, import.meta.url));
const key = (name: string) => parsePrintableSecretKey(vector(name).toString());
const open = (file: string, keyFile = 'team.key') =>
  buffer(Readable.from([vector(file)]).pipe(new DecryptStream({ secretKey: key(keyFile) })));

it('reads the committed test vectors', async () => {
  const secretKey = key('team.key');
  assert.equal(publicKeyOf(secretKey).toString('hex'), vector('team.pub').toString().trim());
  assert.equal(fingerprintOf(publicKeyOf(secretKey)), vector('team.fingerprint').toString().trim());
  assert.deepEqual(await open('hello.strackt'), vector('hello.txt'));
  assert.equal((await open('empty.strackt')).length, 0);
  assert.equal(
    createHash('sha256')
      .update(await open('multi.strackt'))
      .digest('hex'),
    vector('multi.sha256').toString().trim(),
  );
});

it('reports each tampered test vector as its expected error', async () => {
  const expected = JSON.parse(vector('expected-errors.json').toString()) as Record<string, string>;
  for (const [what, kind] of Object.entries(expected)) {
    const [file, , keyFile] = what.split(' ');
    await assert.rejects(
      open(file!, keyFile),
      (err: Error & { kind?: string }) => (assert.equal(err.kind, kind, what), true),
    );
  }
});

it('parses a printable key with spaces, new lines and lower case, and catches a typo', () => {
  const printed = vector('team.key').toString().trim();
  const secretKey = key('team.key');
  assert.deepEqual(parsePrintableSecretKey(printed.toLowerCase().replace(/-/g, ' \n')), secretKey);
  const typo = printed.slice(0, 10) + (printed[10] === 'A' ? 'B' : 'A') + printed.slice(11);
  assert.throws(() => parsePrintableSecretKey(typo), /typo/);
  assert.throws(() => parsePrintableSecretKey(printed.slice(0, -2)), /wrong length/);
  assert.throws(() => parsePrintableSecretKey('hello'), /must start with STK1/);
});
