import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The modules of common/ that workflows may import (types and pure functions only). */
const workflowSafeCommon = ['workflow-contracts', 'operations', 'search-attributes'];

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', '.build/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Type-aware: a promise nobody awaits loses its failure. `void` marks the few started on purpose
    // and left to run, each with a comment why.
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe and it hand their promise to the runner, which awaits and reports it.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
    },
  },
  {
    // Queries live in db/ data functions only: a route or an activity asks db/ for what it needs, so
    // every query of a table is in one place (tests and benchmarks set up and inspect rows directly).
    files: ['**/*.ts'],
    ignores: ['db/**', 'tests/**', 'bench/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'CallExpression[callee.property.name=/^(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)$/]',
          message: 'Queries live in db/ data functions: add one there and call it.',
        },
      ],
    },
  },
  // Imports only point down. Each folder names what it may not import: the layers above it, and the
  // programs (agent, receiver) that stand beside the control plane.
  ...Object.entries({
    common: ['format', 'storage', 'db', 'activities', 'workflows', 'api', 'agent', 'receiver', 'worker'],
    format: ['storage', 'db', 'activities', 'workflows', 'api', 'agent', 'receiver', 'worker'],
    storage: ['db', 'activities', 'workflows', 'api', 'agent', 'receiver', 'worker'],
    db: ['activities', 'workflows', 'api', 'agent', 'receiver', 'worker'],
    activities: ['workflows', 'api', 'agent', 'receiver', 'worker'],
    agent: ['db', 'activities', 'workflows', 'api', 'receiver', 'worker'],
    receiver: ['db', 'activities', 'workflows', 'api', 'agent', 'worker'],
    api: ['agent', 'receiver', 'worker', 'web'],
    // The page runs in the browser: it speaks to the API over HTTP only, and imports none of the server's code.
    web: [
      'common',
      'format',
      'storage',
      'db',
      'activities',
      'workflows',
      'api',
      'agent',
      'receiver',
      'worker',
    ],
  }).map(([folder, above]) => ({
    files: [`${folder}/**/*.ts`, `${folder}/**/*.tsx`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(\\.\\./)+(${above.join('|')})/`,
              message: `${folder}/ may not import ${above.join(', ')}: imports only point down (docs/ARCHITECTURE.md).`,
            },
          ],
        },
      ],
    },
  })),
  {
    // Kysely's guidance: migrations are typed against Kysely<any> so they never depend on today's schema.
    files: ['db/migrations/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: Node built-ins, the database or zod would
    // break replay or bloat every workflow's bundle. Workflows import @temporalio/workflow, each other,
    // and the workflow-safe part of common/ (below); anything else as types only (activities for
    // proxyActivities, common/host-tasks.ts for the host steps).
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(?!@temporalio/workflow$|\\./[^/]+$|\\.\\./common/(${workflowSafeCommon.join('|')})\\.ts$)`,
              allowTypeImports: true,
              message:
                'Workflows import only @temporalio/workflow, other workflow files and the workflow-safe ' +
                `common modules (${workflowSafeCommon.join(', ')}); anything else with \`import type\`.`,
            },
          ],
        },
      ],
    },
  },
  {
    // The workflow-safe part of common/ stays that way: it imports only itself and @temporalio/common.
    files: workflowSafeCommon.map((name) => `common/${name}.ts`),
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(?!@temporalio/common$|\\./(${workflowSafeCommon.join('|')})\\.ts$)`,
              allowTypeImports: true,
              message: `Workflow-safe common modules import only each other (${workflowSafeCommon.join(', ')}) and @temporalio/common.`,
            },
          ],
        },
      ],
    },
  },
);
