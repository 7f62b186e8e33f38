import { useEffect, useState } from 'hono/jsx/dom';
import { api, ApiError, operationEvents } from './api.ts';
import { bytes, duration, rate, when } from './format.ts';
import { TemporalLink } from './operations.tsx';
import { Link } from './router.tsx';
import type { Environment, Operation } from './types.ts';
import { Pending, Title } from './ui.tsx';

const active = (op: Operation) => op.status === 'pending' || op.status === 'running';

/** The operation as its event stream tells it, from its first state to its last. */
function useLiveOperation(id: string): { op?: Operation; error?: Error } {
  const [state, setState] = useState<{ op?: Operation; error?: Error }>({});
  useEffect(() => {
    const stop = new AbortController();
    (async () => {
      for await (const op of operationEvents(id, stop.signal)) setState({ op });
    })().catch((error: Error) => {
      if (!stop.signal.aborted) setState((s) => ({ ...s, error }));
    });
    return () => stop.abort();
  }, [id]);
  return state;
}

function Transfer({ transfer }: { transfer: NonNullable<Operation['transfer']> }) {
  const { bytes: moved, totalBytes, bytesPerSecond, etaSeconds } = transfer;
  return (
    <div class="transfer">
      <label for="transfer-progress">{transfer.stepName}</label>
      <progress id="transfer-progress" max={totalBytes ?? undefined} value={totalBytes ? moved : undefined}>
        {bytes(moved)}
      </progress>
      <p>
        {bytes(moved)}
        {totalBytes ? ` of ${bytes(totalBytes)}` : ''}
        {bytesPerSecond ? ` at ${rate(bytesPerSecond)}` : ''}
        {etaSeconds ? `, about ${duration(etaSeconds * 1000)} left` : ''}
      </p>
    </div>
  );
}

/** A backup, a restore or any other operation, live: steps, bytes, rate, downtime; cancel while it runs. */
export function OperationView({ id }: { id: string }) {
  const { op, error } = useLiveOperation(id);
  const [env, setEnv] = useState<Environment>();
  const [cancelError, setCancelError] = useState<string>();
  useEffect(() => {
    if (op && env?.id !== op.environmentId)
      api<Environment>('GET', `/environments/${op.environmentId}`).then(setEnv, () => {});
  }, [op?.environmentId]);
  if (!op)
    return (
      <>
        <Title>Operation</Title>
        <Pending error={error} />
      </>
    );
  const kind = op.kind[0]!.toUpperCase() + op.kind.slice(1);
  return (
    <>
      <Title>{`${kind} of ${env?.name ?? op.environmentId}`}</Title>
      <p>
        <Link href={`/app/environments/${op.environmentId}`}>Back to {env?.name ?? 'the environment'}</Link>
      </p>
      <p class="status" aria-live="polite">
        Status: <strong data-status={op.status}>{op.status}</strong>
        {op.finishedAt ? ` at ${when(op.finishedAt)}` : ''}
      </p>
      {op.error && (
        <p role="alert" class="error">
          {op.error}
        </p>
      )}
      {op.transfer && <Transfer transfer={op.transfer} />}
      {op.restore?.downtimeMs != null && (
        <p>
          <strong>Downtime:</strong> {duration(op.restore.downtimeMs)}
        </p>
      )}
      <section aria-labelledby="steps">
        <h2 id="steps">Steps</h2>
        <ol class="steps">
          {op.steps.map((step) => (
            <li data-status={step.status}>
              <span class="step-name">{step.name}</span>: <span class="step-status">{step.status}</span>
              {step.startedAt && step.endedAt
                ? `, ${duration(Date.parse(step.endedAt) - Date.parse(step.startedAt))}`
                : ''}
              {step.bytes ? `, ${bytes(step.bytes)}` : ''}
              {step.bytesPerSecond ? ` at ${rate(step.bytesPerSecond)}` : ''}
              {step.note ? ` (${step.note})` : ''}
              {step.error && <span class="error"> {step.error}</span>}
            </li>
          ))}
        </ol>
      </section>
      {active(op) && (
        <button
          type="button"
          class="secondary"
          onClick={async () => {
            setCancelError(undefined);
            await api('POST', `/operations/${op.id}/cancel`).catch((err: Error) =>
              setCancelError(err instanceof ApiError ? err.message : String(err)),
            );
          }}
        >
          Cancel {op.kind}
        </button>
      )}
      {cancelError && (
        <p role="alert" class="error">
          {cancelError}
        </p>
      )}
      <p class="muted">
        Temporal workflow {op.workflowId}
        {op.temporalUiUrl && (
          <>
            : <TemporalLink op={op} />
          </>
        )}
      </p>
    </>
  );
}
