// Bundling and serving browser test pages that import the client the way applications do:
// esbuild resolves `comet-push-client` (and `comet-push-client/react`, `react`, `react-dom`)
// through package.json `exports`, from an installed package or a symlink to client/.
import http from 'node:http';
import path from 'node:path';

import * as esbuild from 'esbuild';

import { nodeTestsDir } from './server.mjs';

/** tests/node/node_modules: where `react` and `react-dom` (dev dependencies) are found. */
export const TEST_MODULES = path.join(nodeTestsDir, 'node_modules');

/**
 * Bundles `entry` for the browser (one IIFE, development React so StrictMode double-mounts)
 * and returns its text. Bare imports resolve from `absWorkingDir`'s node_modules, then
 * `nodePaths`. Build errors reject with esbuild's messages.
 */
export async function bundle(entry, { absWorkingDir, nodePaths = [TEST_MODULES], mode = 'development' } = {}) {
  const result = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir,
    nodePaths,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    define: { 'process.env.NODE_ENV': JSON.stringify(mode) },
    write: false,
    logLevel: 'silent',
    metafile: true,
  });
  return { js: result.outputFiles[0].text, inputs: Object.keys(result.metafile.inputs) };
}

/**
 * The page the React app runs in: counts every fetch the page makes (window.requests) before
 * the bundle loads, so tests can tell how many subscribe requests the client opened.
 */
export const APP_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>comet-push-client/react</title>
<style>body{font:13px system-ui,sans-serif;margin:16px} section{border:1px solid #ccc;border-radius:6px;padding:4px 8px;margin:6px 0}</style>
<script>
  window.requests = [];
  const realFetch = window.fetch;
  window.fetch = function (input, init) {
    window.requests.push(String(input && input.url ? input.url : input));
    return realFetch.call(this, input, init);
  };
</script></head>
<body><div id="root"></div><script src="/app.js"></script></body></html>`;

/** Serves `routes` (pathname -> [content type, body or () => body]) on a loopback port. */
export async function startStaticServer(routes) {
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    const r = routes[pathname];
    if (!r && pathname === '/favicon.ico') return res.writeHead(204).end(); // no console noise
    if (!r) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': `${r[0]}; charset=utf-8`, 'cache-control': 'no-store' });
    res.end(typeof r[1] === 'function' ? r[1]() : r[1]);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}
