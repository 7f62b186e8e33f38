import { useEffect, useRef, useState } from 'hono/jsx/dom';
import { api } from './api.ts';

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

export interface Paged<T> {
  items?: T[];
  error?: Error;
  /** Loads the next page and adds it below; undefined on the last page. */
  more?: () => void;
  loadingMore: boolean;
  /** Loads again as many pages as are shown, so a change keeps the reader where they were. */
  reload: () => void;
}

/**
 * A list the API gives a page at a time (`{ [key]: [...], next }`): the first page, then each
 * following one when asked, by the `next` link the API handed out.
 */
export function usePaged<T>(key: string, first: string): Paged<T> {
  type Answer = Record<string, T[]> & { next: string | null };
  const [state, setState] = useState<{
    first: string;
    items?: T[];
    next?: string | null;
    pages: number;
    error?: Error;
  }>({ first, pages: 1 });
  const [loadingMore, setLoadingMore] = useState(false);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    (async () => {
      const items: T[] = [];
      let path: string | null = first;
      let pages = 0;
      // Another list (a filter changed) starts at its first page.
      const wanted = state.first === first ? state.pages : 1;
      while (path !== null && pages < wanted) {
        const answer: Answer = await api<Answer>('GET', path);
        items.push(...answer[key]!);
        path = answer.next;
        pages++;
      }
      return { first, items, next: path, pages };
    })().then(
      (loaded) => current && setState(loaded),
      (error: Error) => current && setState((s) => ({ ...s, first, error })),
    );
    return () => {
      current = false;
    };
  }, [first, round]);
  // Until another list's first page comes, the previous list is not shown as if it were this one.
  const { next, error } = state;
  const items = state.first === first ? state.items : undefined;
  return {
    items,
    error,
    loadingMore,
    reload: () => setRound((n) => n + 1),
    more: next
      ? () => {
          setLoadingMore(true);
          api<Answer>('GET', next).then(
            (answer) => {
              setState((s) => ({
                first: s.first,
                items: [...(s.items ?? []), ...answer[key]!],
                next: answer.next,
                pages: s.pages + 1,
              }));
              setLoadingMore(false);
            },
            (error: Error) => {
              setState((s) => ({ ...s, error }));
              setLoadingMore(false);
            },
          );
        }
      : undefined,
  };
}

/**
 * The button under a paged list that loads its next page. It is not disabled while loading (a disabled
 * button drops the keyboard's focus); after the last page, the line saying so takes the focus instead.
 */
export function MoreButton({ paged, what }: { paged: Paged<unknown>; what: string }) {
  const asked = useRef(false);
  const allShown = useRef<HTMLParagraphElement>(null);
  const last = !paged.more && !paged.loadingMore;
  useEffect(() => {
    if (asked.current && last) allShown.current?.focus();
  }, [last]);
  if (paged.items && paged.error)
    return (
      <p role="alert" class="error">
        {paged.error.message}
      </p>
    );
  if (!paged.more)
    return asked.current ? (
      <p tabIndex={-1} ref={allShown} class="muted">
        All {paged.items?.length} {what} shown.
      </p>
    ) : null;
  const more = paged.more;
  return (
    <p>
      <button
        type="button"
        class="secondary"
        aria-disabled={paged.loadingMore ? 'true' : undefined}
        onClick={() => {
          if (paged.loadingMore) return;
          asked.current = true;
          more();
        }}
      >
        {paged.loadingMore ? `Loading more ${what}…` : `Show more ${what}`}
      </button>
    </p>
  );
}
