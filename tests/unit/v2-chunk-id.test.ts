import assert from 'node:assert/strict';
import { it } from 'node:test';
import { chunkIdOf } from '../../format/v2/chunk-id.ts';

it('makes chunk ids with HMAC-SHA-256 as RFC 4231 defines it', () => {
  // RFC 4231, test cases 2 and 6 (a key longer than SHA-256's block is hashed first).
  assert.equal(
    chunkIdOf(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')).toString('hex'),
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
  assert.equal(
    chunkIdOf(
      Buffer.alloc(131, 0xaa),
      Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
    ).toString('hex'),
    '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  );
});
