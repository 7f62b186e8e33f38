import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { searchAttributeKeys } from '../../common/search-attributes.ts';
import { operationWorkflowId } from '../../common/workflow-contracts.ts';

it('registers at server start exactly the search attributes the code uses', () => {
  const registered = readFileSync(new URL('../../deploy/search-attributes.txt', import.meta.url), 'utf8')
    .split('\n')
    .filter(Boolean);
  assert.deepEqual(
    registered,
    searchAttributeKeys.map((k) => `${k.name}=${k.type === 'KEYWORD' ? 'Keyword' : k.type}`),
  );
});

it('builds readable workflow ids with the environment and the UTC time', () => {
  assert.equal(
    operationWorkflowId('deploy', 'env_abc', new Date('2026-11-26T04:05:06.789Z')),
    'deploy-env_abc-20261126T040506.789Z',
  );
});
