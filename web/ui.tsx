import { useEffect, useRef, useState } from 'hono/jsx/dom';

/**
 * The view's heading: it names the tab and takes the focus when the view opens, so a screen reader
 * announces the new view and the keyboard continues from its top.
 */
export function Title({ children }: { children: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${children} · strackt backups`;
    ref.current?.focus();
  }, [children]);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

export interface Loaded<T> {
  data?: T;
  error?: Error;
  reload: () => void;
}

/** Data the view shows, loaded again whenever `deps` change or `reload` is called. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error }>({});
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    load().then(
      (data) => current && setState({ data }),
      (error: Error) => current && setState({ error }),
    );
    return () => {
      current = false;
    };
  }, [...deps, round]);
  return { ...state, reload: () => setRound((n) => n + 1) };
}

/** What stands in for data not there yet: a failure said in words, or that it is loading. */
export function Pending({ error }: { error?: Error | undefined }) {
  return error ? (
    <p role="alert" class="error">
      {error.message}
    </p>
  ) : (
    <p aria-live="polite">Loading…</p>
  );
}

/** The API's word on one field, next to it; the field points here with aria-describedby. */
export function FieldError({ id, error }: { id: string; error?: Error | undefined }) {
  return error ? (
    <p id={id} class="error field-error">
      {error.message}
    </p>
  ) : null;
}
