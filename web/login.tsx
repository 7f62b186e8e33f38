import { useState } from 'hono/jsx/dom';
import { api, ApiError, session } from './api.ts';
import { Title } from './ui.tsx';

/**
 * Asks for the team token and keeps it for this tab only. The form is never submitted to a URL (the
 * token would land in the address, the history and access logs): the page checks it with one API call.
 */
export function Login({ onSignedIn }: { onSignedIn: () => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  return (
    <>
      <Title>Sign in</Title>
      <form
        class="card narrow"
        onSubmit={async (e: Event) => {
          e.preventDefault();
          const token = (new FormData(e.target as HTMLFormElement).get('token') as string).trim();
          setBusy(true);
          setError(undefined);
          session.signIn(token);
          try {
            await api('GET', '/team');
            onSignedIn();
          } catch (err) {
            session.signOut();
            setError(
              err instanceof ApiError && err.status === 401
                ? 'That token is not valid, or has been revoked.'
                : String(err),
            );
            setBusy(false);
          }
        }}
      >
        <label for="token">Team token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          pattern="stt_[A-Za-z0-9_\-]+"
          aria-describedby={error ? 'token-help token-error' : 'token-help'}
          aria-invalid={error ? 'true' : undefined}
        />
        <p id="token-help" class="muted">
          The stt_… token of your team. It stays in this tab until you sign out or close it.
        </p>
        {error && (
          <p id="token-error" role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </>
  );
}
