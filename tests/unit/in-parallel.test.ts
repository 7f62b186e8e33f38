import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapInParallel } from '../../common/in-parallel.ts';

it('answers in the items’ order, never more than the limit at once', async () => {
  let running = 0;
  let most = 0;
  const out = await mapInParallel([30, 5, 20, 1, 10, 2, 15], 3, async (ms) => {
    most = Math.max(most, ++running);
    await sleep(ms);
    running--;
    return ms * 2;
  });
  assert.deepEqual(out, [60, 10, 40, 2, 20, 4, 30]);
  assert.equal(most, 3);
  assert.deepEqual(await mapInParallel([], 4, async () => 1), []);
});

it('starts nothing after a failure, and rejects with it once the calls started have ended', async () => {
  const started: number[] = [];
  const ended: number[] = [];
  await assert.rejects(
    mapInParallel([0, 1, 2, 3, 4, 5], 2, async (k) => {
      started.push(k);
      if (k === 1) throw new Error('item 1 failed');
      await sleep(20);
      ended.push(k);
      return k;
    }),
    /item 1 failed/,
  );
  // 0 was running beside 1 and ended before the rejection; neither worker started another.
  assert.deepEqual(started, [0, 1]);
  assert.deepEqual(ended, [0]);
});
