import { useEffect, useRef, useState } from 'hono/jsx/dom';
import { fingerprintOfSecret, KeyTextError } from './key-fingerprint.ts';
import type { NewTeamKey } from './types.ts';

/**
 * The team's secret key, the one time the API gives it: to copy, download or print. It lives in this
 * view's memory only: leaving the view forgets it, and no request ever carries it.
 */
export function NewKeyPanel({ teamKey, onDone }: { teamKey: NewTeamKey; onDone: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  const [copied, setCopied] = useState<string>();
  const [download, setDownload] = useState<string>();
  useEffect(() => {
    heading.current?.focus();
    const text = `strackt team key\n\nSecret key: ${teamKey.secretKey}\nFingerprint: ${teamKey.fingerprint}\n\n${teamKey.notice}\n`;
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    setDownload(url);
    return () => URL.revokeObjectURL(url);
  }, [teamKey.secretKey]);
  return (
    <section class="card key-once" aria-labelledby="key-once">
      <h2 id="key-once" tabIndex={-1} ref={heading}>
        Your team key: save it now
      </h2>
      <p class="warn">{teamKey.notice}</p>
      <p>Secret key:</p>
      <p class="secret">{teamKey.secretKey}</p>
      <p>
        Fingerprint: <code>{teamKey.fingerprint}</code>
      </p>
      <div class="actions no-print">
        <button
          type="button"
          class="secondary"
          onClick={async () => {
            await navigator.clipboard.writeText(teamKey.secretKey).then(
              () => setCopied('Copied to the clipboard.'),
              () => setCopied('The browser did not allow copying: select the key and copy it by hand.'),
            );
          }}
        >
          Copy
        </button>
        <a class="button secondary" href={download} download="strackt-team-key.txt">
          Download
        </a>
        <button type="button" class="secondary" onClick={() => window.print()}>
          Print
        </button>
        <button type="button" onClick={onDone}>
          I have saved it
        </button>
      </div>
      <p role="status" class="no-print">
        {copied}
      </p>
    </section>
  );
}

/**
 * "Do we still hold the key?": the fingerprint is worked out here, in the page, from the key typed in,
 * and compared with the one the API shows. The key is sent nowhere.
 */
export function KeyCheck({ fingerprint }: { fingerprint: string }) {
  const [answer, setAnswer] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="card narrow"
      aria-labelledby="key-check"
      autocomplete="off"
      onSubmit={async (e: Event) => {
        e.preventDefault();
        const input = (e.target as HTMLFormElement).elements.namedItem('secretKey') as HTMLInputElement;
        setBusy(true);
        try {
          const derived = await fingerprintOfSecret(input.value);
          setAnswer(
            derived === fingerprint
              ? { ok: true, text: `This is the team’s key: its fingerprint ${derived} matches.` }
              : {
                  ok: false,
                  text: `This is not the team’s key: its fingerprint is ${derived}, the team’s is ${fingerprint}.`,
                },
          );
        } catch (err) {
          setAnswer({ ok: false, text: err instanceof KeyTextError ? err.message : String(err) });
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 id="key-check">Check that you still hold the key</h2>
      <p class="muted">
        Type or paste the secret key you saved. It is checked in this page and sent nowhere: only its
        fingerprint is compared with the team’s.
      </p>
      <label for="secretKey">Secret key (STK1-…)</label>
      <input
        id="secretKey"
        name="secretKey"
        type="password"
        required
        spellcheck={false}
        autocomplete="off"
        aria-describedby={answer ? 'key-check-answer' : undefined}
      />
      <button type="submit" disabled={busy}>
        Check the key
      </button>
      <p id="key-check-answer" role="status" class={answer ? (answer.ok ? 'good' : 'error') : undefined}>
        {answer?.text}
      </p>
    </form>
  );
}
