import { useState } from 'hono/jsx/dom';
import { api } from './api.ts';
import { duration, when } from './format.ts';
import { Link } from './router.tsx';
import type { Environment, Operation, Page } from './types.ts';
import { MoreButton, Pending, Title, useLoad, usePaged } from './ui.tsx';

const kinds = ['backup', 'restore', 'verify', 'deploy', 'stop'] as const;
const statuses = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;

async function loadEnvironmentNames() {
  const { environments } = await api<Page<'environments', Environment>>('GET', '/environments?limit=200');
  return new Map(environments.map((e) => [e.id, e.name]));
}

/** A link to the operation's workflow in the Temporal UI, or its id where the API knows no UI. */
export function TemporalLink({ op }: { op: Operation }) {
  return op.temporalUiUrl ? (
    <a href={op.temporalUiUrl} target="_blank" rel="noopener noreferrer">
      Temporal UI<span class="visually-hidden"> for {op.workflowId} (opens in a new tab)</span>
    </a>
  ) : (
    <code>{op.workflowId}</code>
  );
}

/** The team's operations, newest first, narrowed by kind and status; each links to its live view and its workflow. */
export function OperationsView() {
  const [filter, setFilter] = useState({ kind: '', status: '' });
  const query = new URLSearchParams({
    ...(filter.kind && { kind: filter.kind }),
    ...(filter.status && { status: filter.status }),
  });
  const paged = usePaged<Operation>('operations', `/operations?${query}`);
  const names = useLoad(loadEnvironmentNames, []);
  const operations = paged.items;
  const error = paged.error ?? names.error;
  return (
    <>
      <Title>Operations</Title>
      <form
        class="inline"
        aria-label="Filter the operations"
        onChange={(e: Event) => {
          const form = new FormData(e.currentTarget as HTMLFormElement);
          setFilter({ kind: form.get('kind') as string, status: form.get('status') as string });
        }}
        onSubmit={(e: Event) => e.preventDefault()}
      >
        <label for="op-kind">Kind</label>
        <select id="op-kind" name="kind">
          <option value="">any</option>
          {kinds.map((k) => (
            <option value={k}>{k}</option>
          ))}
        </select>
        <label for="op-status">Status</label>
        <select id="op-status" name="status">
          <option value="">any</option>
          {statuses.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </form>
      {!operations || !names.data ? (
        <Pending error={error} />
      ) : operations.length === 0 ? (
        <p>No operations{filter.kind || filter.status ? ' of that kind or status' : ' yet'}.</p>
      ) : (
        <div class="scroll" tabIndex={0} role="region" aria-labelledby="ops-caption">
          <table>
            <caption id="ops-caption" class="visually-hidden">
              Operations, newest first
            </caption>
            <thead>
              <tr>
                <th scope="col">Started</th>
                <th scope="col">Kind</th>
                <th scope="col">Environment</th>
                <th scope="col">Status</th>
                <th scope="col">Took</th>
                <th scope="col">Workflow</th>
              </tr>
            </thead>
            <tbody>
              {operations.map((op) => (
                <tr>
                  <th scope="row">
                    <Link href={`/app/operations/${op.id}`}>
                      <time dateTime={op.createdAt}>{when(op.createdAt)}</time>
                    </Link>
                  </th>
                  <td>{op.kind}</td>
                  <td>{names.data?.get(op.environmentId) ?? op.environmentId}</td>
                  <td data-status={op.status}>{op.status}</td>
                  <td>
                    {op.finishedAt ? duration(Date.parse(op.finishedAt) - Date.parse(op.createdAt)) : '–'}
                  </td>
                  <td>
                    <TemporalLink op={op} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {/* Keyed by the filter: another list has not been asked for more yet. */}
      <MoreButton key={query.toString()} paged={paged} what="operations" />
    </>
  );
}
