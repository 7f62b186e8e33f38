import { useState } from 'hono/jsx/dom';
import { api, ApiError } from './api.ts';
import { when } from './format.ts';
import { Link, navigate } from './router.tsx';
import type { Operation, Snapshot } from './types.ts';

/**
 * A snapshot's actions: restore, pin or unpin, verify (shown live on its operation's view), delete.
 * Each button names its snapshot for screen readers, since a row holds several of the same words.
 */
export function SnapshotActions({
  envId,
  snapshot,
  changed,
  failed,
}: {
  envId: string;
  snapshot: Snapshot;
  changed: () => void;
  failed: (message: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const of = <span class="visually-hidden"> the snapshot of {when(snapshot.createdAt)}</span>;
  const act = (run: () => Promise<void>) => async () => {
    setBusy(true);
    try {
      await run();
    } catch (err) {
      failed(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="row-actions">
      <Link href={`/app/environments/${envId}/restore?snapshot=${snapshot.id}`}>Restore{of}</Link>
      <button
        type="button"
        class="link"
        disabled={busy}
        onClick={act(async () => {
          await api('PATCH', `/snapshots/${snapshot.id}`, { pinned: !snapshot.pinned });
          changed();
        })}
      >
        {snapshot.pinned ? 'Unpin' : 'Pin'}
        {of}
      </button>
      <button
        type="button"
        class="link"
        disabled={busy}
        onClick={act(async () => {
          const op = await api<Operation>('POST', `/snapshots/${snapshot.id}/verify`, {});
          navigate(`/app/operations/${op.id}`);
        })}
      >
        Verify{of}
      </button>
      <button
        type="button"
        class="link danger"
        // A pinned snapshot is kept on purpose: the API refuses to delete it, so the page does not offer it.
        disabled={busy || snapshot.pinned}
        title={snapshot.pinned ? 'Pinned: unpin it first' : undefined}
        onClick={act(async () => {
          if (!confirm(`Delete the snapshot of ${when(snapshot.createdAt)}? It cannot be restored after.`))
            return;
          await api('DELETE', `/snapshots/${snapshot.id}`);
          changed();
        })}
      >
        Delete{of}
      </button>
    </div>
  );
}
