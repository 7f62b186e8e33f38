import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Hono } from 'hono';

const webDir = fileURLToPath(new URL('../web/', import.meta.url));

// Everything the page runs comes from this origin, as files: no inline script or style, no frames,
// no other hosts. The token the page holds can then only go back to this API. 'wasm-unsafe-eval' lets
// the key check compile libsodium's WebAssembly (bundled here, from this origin); it allows no eval()
// of JavaScript, which script-src still refuses.
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const pageHeaders = {
  'content-security-policy': contentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // The pages show a team's data: no shared cache keeps them.
  'cache-control': 'no-store',
};

const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>strackt backups</title>
    <link rel="stylesheet" href="/app/assets/app.css" />
    <script type="module" src="/app/assets/app.js"></script>
  </head>
  <body>
    <div id="root"></div>
  </body>
</html>
`;

/**
 * The page's scripts, bundled by esbuild from web/ the first time they are asked for, then kept: bundled
 * in the API process rather than by a build step, so a checkout and its page never disagree and
 * `npm start` needs nothing more (esbuild is already a dependency; the bundle takes ~100 ms). Split:
 * app.js is the page, and what only one view needs (libsodium for the key check, ~0.9 MB) is a chunk
 * that view imports when it opens.
 */
let bundled: Promise<Map<string, string>> | undefined;
function bundle(): Promise<Map<string, string>> {
  bundled ??= build({
    entryPoints: { app: `${webDir}main.tsx` },
    bundle: true,
    splitting: true,
    outdir: '/assets',
    chunkNames: 'chunk-[hash]',
    write: false,
    format: 'esm',
    target: 'es2022',
    minify: true,
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx/dom',
    logLevel: 'silent',
  }).then((r) => new Map(r.outputFiles.map((f) => [f.path.slice('/assets/'.length), f.text])));
  // A failed bundle is tried again at the next request rather than kept.
  bundled.catch(() => (bundled = undefined));
  return bundled;
}

/**
 * GET /app and below: the backups page. No token is needed for the page itself: it asks for the team
 * token and sends it on each API call from the browser, as the Authorization header.
 */
export function webAppRoutes() {
  return (
    new Hono()
      .get('/app/assets/:name{[a-zA-Z0-9_-]+\\.js}', async (c) => {
        const script = (await bundle()).get(c.req.param('name'));
        if (script === undefined) return c.notFound();
        return c.body(script, 200, { ...pageHeaders, 'content-type': 'text/javascript; charset=utf-8' });
      })
      .get('/app/assets/app.css', async (c) =>
        c.body(await readFile(`${webDir}app.css`), 200, {
          ...pageHeaders,
          'content-type': 'text/css; charset=utf-8',
        }),
      )
      .get('/app/assets/*', (c) => c.notFound())
      // Every other path under /app is a view of the page, routed in the browser.
      .get('/app', (c) => c.html(page, 200, pageHeaders))
      .get('/app/*', (c) => c.html(page, 200, pageHeaders))
  );
}
