import assert from 'node:assert/strict';
import { it } from 'node:test';
import { notedAnswers, servedDocuments, undeclaredAnswers } from './helpers/api-answers.ts';

// Sorted after every other test file (deploy/test.sh runs them in that order, one at a time), so it
// sees the answers the API gave in all of them.
it('every answer the API gave in this run is declared in the OpenAPI documents', async (t) => {
  const answers = notedAnswers();
  if (answers.length === 0) return t.skip('no API answers were noted in this run (no other test file ran)');
  t.diagnostic(`${answers.length} distinct answers (method, path, status) noted`);
  const docs = await servedDocuments();
  assert.deepEqual(undeclaredAnswers([docs.public, docs.agent], answers), []);
});
