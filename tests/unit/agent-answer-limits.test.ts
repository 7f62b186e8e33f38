import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxAnswerBytes } from '../../agent/http-request.ts';
import { chunkIdsPerAsk, chunkPlacesPerAsk } from '../../common/pack-upload-limits.ts';
import { maxChunkBytes } from '../../format/v2/chunker.ts';
import { newPackId } from '../../format/v2/pack-layout.ts';

// The largest answers to the agent's batched format-2 calls must fit what the agent reads of an
// answer: a restore of a 10 GiB snapshot once failed on its chunks' places.
const chunkIdHex = 'f'.repeat(64);
const byteSize = (answer: unknown) => Buffer.byteLength(JSON.stringify(answer));

describe("the agent's batched calls", () => {
  it("answer places of chunkPlacesPerAsk chunks within the agent's limit, at their longest", () => {
    const place = {
      chunkId: chunkIdHex,
      packId: newPackId(),
      offset: 2 ** 31 - 1,
      length: maxChunkBytes + 1024,
      rawLength: maxChunkBytes,
    };
    const answer = byteSize({ locations: Array.from({ length: chunkPlacesPerAsk }, () => place) });
    assert.ok(answer < maxAnswerBytes, `${answer} bytes`);
    // The bound that failed: as many places as chunk ids asked about elsewhere.
    const before = byteSize({ locations: Array.from({ length: chunkIdsPerAsk }, () => place) });
    assert.ok(before > maxAnswerBytes, `${before} bytes`);
  });

  it("answer the chunks needed of chunkIdsPerAsk within the agent's limit", () => {
    const answer = byteSize({ needed: Array.from({ length: chunkIdsPerAsk }, () => chunkIdHex) });
    assert.ok(answer < maxAnswerBytes, `${answer} bytes`);
  });
});
