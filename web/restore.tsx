import { useState } from 'hono/jsx/dom';
import { api } from './api.ts';
import { bytes, relative, when } from './format.ts';
import { RestoreConfirm } from './restore-confirm.tsx';
import { Link } from './router.tsx';
import { teamNames } from './team.ts';
import type { Environment, Server, Snapshot } from './types.ts';
import { MoreButton, Pending, Title, useLoad, usePaged } from './ui.tsx';

async function loadRestore(envId: string) {
  const [env, names] = await Promise.all([api<Environment>('GET', `/environments/${envId}`), teamNames()]);
  return { env, ...names };
}

/** Why a server cannot take a restore now, or nothing when it can. */
const refusal = (s: Server) =>
  s.connected
    ? undefined
    : s.lastSeenAt
      ? `offline: its agent was last seen ${relative(s.lastSeenAt)}`
      : 'offline: its agent has never connected';

/** Restore: pick a snapshot, pick a connected server, read what will happen, then start it. */
export function RestoreView({ envId, snapshotId }: { envId: string; snapshotId: string | null }) {
  const { data, error } = useLoad(() => loadRestore(envId), [envId]);
  const paged = usePaged<Snapshot>('snapshots', `/environments/${encodeURIComponent(envId)}/snapshots`);
  const snapshots = paged.items;
  const [choice, setChoice] = useState<{ snapshotId: string; serverId: string }>();
  if (!data || !snapshots)
    return (
      <>
        <Title>Restore</Title>
        <Pending error={error ?? paged.error} />
      </>
    );
  const { env, servers } = data;
  const current = servers.get(env.serverId);
  const snapshot = snapshots.find((s) => s.id === choice?.snapshotId);
  const target = choice && servers.get(choice.serverId);

  if (snapshot && target)
    return (
      <RestoreConfirm
        env={env}
        snapshot={snapshot}
        target={target}
        current={current?.name ?? env.serverId}
        onBack={() => setChoice(undefined)}
      />
    );

  const preferred = snapshotId ?? snapshots.find((s) => s.lastVerified?.result !== 'failed')?.id;
  return (
    <>
      <Title>{`Restore ${env.name}`}</Title>
      <p>
        <Link href={`/app/environments/${env.id}`}>Back to {env.name}</Link>
      </p>
      {snapshots.length === 0 ? (
        <p>No snapshots to restore from yet.</p>
      ) : (
        <form
          onSubmit={(e: Event) => {
            e.preventDefault();
            const form = new FormData(e.target as HTMLFormElement);
            setChoice({ snapshotId: form.get('snapshot') as string, serverId: form.get('server') as string });
          }}
        >
          <fieldset>
            <legend>Snapshot</legend>
            {snapshots.map((s) => (
              <div class="choice">
                <input
                  type="radio"
                  name="snapshot"
                  id={`snap-${s.id}`}
                  value={s.id}
                  required
                  checked={s.id === preferred}
                />
                <label for={`snap-${s.id}`}>
                  {when(s.createdAt)}, {bytes(s.sizeBytes)}
                  {s.lastVerified?.result === 'failed' ? ' (failed its last verification)' : ''}
                </label>
              </div>
            ))}
            <MoreButton paged={paged} what="snapshots" />
          </fieldset>
          <fieldset>
            <legend>Onto server</legend>
            {[...servers.values()].map((s) => {
              const reason = refusal(s);
              return (
                <div class="choice">
                  <input
                    type="radio"
                    name="server"
                    id={`srv-${s.id}`}
                    value={s.id}
                    required
                    disabled={!!reason}
                    checked={!reason && s.id === env.serverId}
                    aria-describedby={reason ? `srv-${s.id}-why` : undefined}
                  />
                  <label for={`srv-${s.id}`}>
                    {s.name}
                    {s.id === env.serverId ? ' (where it runs now)' : ''}
                  </label>
                  {reason && (
                    <span id={`srv-${s.id}-why`} class="muted">
                      {' '}
                      {reason}
                    </span>
                  )}
                </div>
              );
            })}
          </fieldset>
          <button type="submit">Review the restore</button>
        </form>
      )}
    </>
  );
}
