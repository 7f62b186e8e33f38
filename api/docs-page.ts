import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Hono } from 'hono';

// The page's script and style come from the installed swagger-ui-dist, so it loads nothing from a
// CDN and works offline. absolute-path.js is the package's getAbsoluteFSPath without its index,
// which would load the whole 1.5 MB bundle into the API process.
const swaggerUiDir: string = createRequire(import.meta.url)('swagger-ui-dist/absolute-path.js')();

const javascript = 'text/javascript; charset=utf-8';
const assets = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', javascript],
]);

// A file of its own rather than an inline script, so the page needs no 'unsafe-inline'.
const startScript = `window.onload = () => {
  window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#reference', deepLinking: true });
};
`;

const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>strackt API reference</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
  </head>
  <body>
    <div id="reference"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/start.js"></script>
  </body>
</html>
`;

/** GET /docs: the API reference, rendered in the browser from /openapi.json; no token needed. */
export function docsPageRoutes() {
  return new Hono()
    .get('/docs', (c) => c.html(page))
    .get('/docs/start.js', (c) => c.body(startScript, 200, { 'content-type': javascript }))
    .get('/docs/:file', async (c) => {
      // Only the listed files: a name from the request never reaches the file system.
      const file = c.req.param('file');
      const type = assets.get(file);
      if (!type) return c.notFound();
      return c.body(await readFile(join(swaggerUiDir, file)), 200, { 'content-type': type });
    });
}
