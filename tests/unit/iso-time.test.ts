import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoTime } from '../../common/iso-time.ts';

describe('isoTime', () => {
  it('writes what Date writes, at the edges of days, months, leap years and centuries', () => {
    const edges = [
      0, 1, 86_399_999, 86_400_000, 951_782_399_999, 951_782_400_000, 951_868_800_000, 4_107_542_399_999,
      4_107_542_400_000, 1_795_000_000_123, 253_402_300_799_999,
    ];
    for (const ms of edges) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  });

  it('writes what Date writes for 100,000 times across the years 1970 to 9999', () => {
    let seed = 42;
    for (let i = 0; i < 100_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      const ms = Math.floor((seed / 2 ** 31) * 253_402_300_799_999);
      assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
    }
  });
});
