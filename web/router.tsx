import { useEffect, useState } from 'hono/jsx/dom';

// The page's views are paths under /app, so each has an address to bookmark or share; none carries
// the token. Navigating pushes a history entry and tells the app, without reloading.
const changed = 'strackt:navigate';

export function navigate(path: string): void {
  history.pushState(null, '', path);
  window.dispatchEvent(new Event(changed));
}

/** The current path and query, kept up to date with navigation and the back button. */
export function useLocation(): URL {
  const [href, setHref] = useState(location.href);
  useEffect(() => {
    const update = () => setHref(location.href);
    window.addEventListener('popstate', update);
    window.addEventListener(changed, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(changed, update);
    };
  }, []);
  return new URL(href);
}

/** A link within the page: a real anchor (keyboard, middle click, screen readers), routed here. */
export function Link({
  href,
  children,
  class: className,
}: {
  href: string;
  children: unknown;
  class?: string;
}) {
  return (
    <a
      href={href}
      class={className}
      onClick={(e: MouseEvent) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}
