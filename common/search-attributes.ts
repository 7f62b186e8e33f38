import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// Registered at server start from deploy/search-attributes.txt; a unit test keeps the two equal.
export const teamAttribute = defineSearchAttributeKey('StracktTeam', SearchAttributeType.KEYWORD);
export const environmentAttribute = defineSearchAttributeKey(
  'StracktEnvironment',
  SearchAttributeType.KEYWORD,
);
export const serverAttribute = defineSearchAttributeKey('StracktServer', SearchAttributeType.KEYWORD);
export const operationAttribute = defineSearchAttributeKey('StracktOperation', SearchAttributeType.KEYWORD);

export const searchAttributeKeys = [teamAttribute, environmentAttribute, serverAttribute, operationAttribute];
