import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { searchAttributeKeys } from '../../common/search-attributes.ts';
import { operationDetails, operationSummary, operationWorkflowId } from '../../common/workflow-contracts.ts';

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

it('sums up each kind of operation in a line for the Temporal UI, by names and the ids that matter', () => {
  const ids = { operationId: 'op_1', teamId: 'team_1', environmentId: 'env_1', serverId: 'srv_2' };
  const labels = { environmentName: 'shop', serverName: 'fra-1' };
  assert.equal(operationSummary('deploy', ids, labels), 'deploy shop on fra-1');
  assert.equal(operationSummary('stop', ids, labels), 'stop shop on fra-1');
  assert.equal(
    operationSummary('backup', { ...ids, destinationId: 'dst_1' }, labels),
    'backup of shop on fra-1 to dst_1',
  );
  assert.equal(
    operationSummary('restore', { ...ids, snapshotId: 'snap_1' }, labels),
    'restore of snap_1 onto shop on fra-1',
  );
  assert.equal(
    operationSummary('verify', { ...ids, snapshotId: 'snap_1' }, labels),
    'verification of snap_1 of shop, read by fra-1',
  );
  const details = operationDetails({ ...ids }, labels);
  for (const id of Object.values(ids)) assert.ok(details.includes(`\`${id}\``), details);
  assert.ok(details.includes('GET /operations/op_1'));
});
