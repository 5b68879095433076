// The npm package `comet-push-client` as users get it: `npm pack` of client/, installed from
// the tarball (offline: it has no dependencies) into an empty project, then
// (a) imported by a Node >= 20 program that receives messages published to a real runner —
//     default transports (jsonp skipped with a reason), forced poll, and sse through the npm
//     `eventsource` polyfill passed as options.EventSource;
// (b) bundled with esbuild together with `comet-push-client/react` (production React) and run
//     in headless Chromium: the hook renders the published messages;
// (c) `<script type="module">` from the runner's /client/comet.js, cross-origin, with the
//     modules it imports (client.test.mjs runs the same file from a page server).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { APP_PAGE, TEST_MODULES, bundle, startStaticServer } from './support/bundle.mjs';
import { SHOTS, launchChromium } from './support/chromium.mjs';
import { BACKENDS, nodeTestsDir, repoRoot, startComet, uniqueChannel } from './support/server.mjs';

const run = promisify(execFile);
const CLIENT_DIR = path.join(repoRoot, 'client');
const TEST_OPTS = { timeout: 90000 };
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Relative imports (`from './x.js'`) of a module's source. */
const relativeImports = (src) => [...src.matchAll(/^(?:import|export)\s[^'"]*from\s+'\.\/([^']+)'/gm)].map((m) => m[1]);

/** Runs the consumer program; resolves its JSON lines once it exits. */
function runConsumer(proj, env, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['node-consumer.mjs'], { cwd: proj, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    let buf = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        lines.push(line);
        onLine?.(line, lines);
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, lines, stderr }));
  });
}

/**
 * Serves `routes` from a throwaway static server, opens a Chromium page on it and collects
 * its page errors; both are closed when the test ends.
 */
async function openStaticPage(t, routes, viewport) {
  const pages = await startStaticServer(routes);
  const browser = await launchChromium(viewport);
  t.after(async () => {
    await browser.close();
    await pages.close();
  });
  const page = await browser.context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  return { origin: pages.origin, page, pageErrors };
}

const backend = BACKENDS[0];
describe(`npm package comet-push-client (pack, install, use) [${backend}]`, () => {
  let work;
  let proj;
  let tarball;
  let comet;
  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'comet-pkg-'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: CLIENT_DIR });
    tarball = path.join(work, JSON.parse(packed.stdout)[0].filename);
    proj = path.join(work, 'app');
    mkdirSync(proj);
    writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: proj });
    copyFileSync(path.join(nodeTestsDir, 'support', 'node-consumer.mjs'), path.join(proj, 'node-consumer.mjs'));
    copyFileSync(path.join(nodeTestsDir, 'support', 'react-app.js'), path.join(proj, 'react-app.js'));
    comet = await startComet({ backend });
  });
  after(async () => {
    await comet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the tarball holds exactly the files the entry points need, and package.json says so', async () => {
    const installed = path.join(proj, 'node_modules', 'comet-push-client');
    const files = readdirSync(installed, { recursive: true }).filter((f) => f.includes('.')).sort();
    assert.deepEqual(files, [
      'README.md', 'comet.d.ts', 'comet.js', 'demo/index.html', 'errors.js', 'package.json',
      'react.d.ts', 'react.js', 'sockjs.js', 'tokens.js', 'transports.js',
    ]);
    const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    assert.equal(pkg.name, 'comet-push-client');
    assert.equal(pkg.license, 'Apache-2.0');
    assert.equal(pkg.sideEffects, false);
    assert.equal(pkg.engines.node, '>=20');
    assert.deepEqual(Object.keys(pkg.exports), ['.', './react', './package.json']);
    assert.deepEqual(pkg.dependencies ?? {}, {}, 'no runtime dependencies');
    assert.deepEqual(pkg.peerDependenciesMeta, { react: { optional: true }, 'sockjs-client': { optional: true } });
    for (const [entry, target] of Object.entries(pkg.exports)) {
      for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
        assert.ok(files.includes(file.replace(/^\.\//, '')), `${entry} -> ${file} is in the package`);
      }
    }
    // Every module's relative imports ship too; only react.js imports a bare name.
    for (const f of files.filter((f) => f.endsWith('.js'))) {
      const src = readFileSync(path.join(installed, f), 'utf8');
      for (const dep of relativeImports(src)) assert.ok(files.includes(dep), `${f} imports ./${dep}`);
      const bare = [...src.matchAll(/^import\s[^'"]*from\s+'([^.'][^']*)'/gm)].map((m) => m[1]);
      assert.deepEqual(bare, f === 'react.js' ? ['react'] : [], `${f}: bare imports`);
    }
  });

  for (const variant of ['default transports', 'poll', 'eventsource polyfill']) {
    test(`(a) Node ${process.version}: import from the installed package, ${variant}: every message once, in order`, TEST_OPTS, async () => {
      const channel = uniqueChannel('pkg-node');
      const N = 12;
      const opts = variant === 'poll' ? { transports: ['poll'], pollTimeout: 2 } : variant === 'eventsource polyfill' ? { transports: ['sse'] } : {};
      const env = {
        COMET_URL: comet.url,
        CHANNEL: channel,
        COUNT: String(N),
        OPTS: JSON.stringify(opts),
        ...(variant === 'eventsource polyfill' ? { EVENTSOURCE: path.join(TEST_MODULES, 'eventsource', 'dist', 'index.js') } : {}),
      };
      let opened;
      const isOpen = new Promise((r) => (opened = r));
      const done = runConsumer(proj, env, (line) => line.open && opened());
      await Promise.race([isOpen, done.then((r) => assert.fail(`consumer exited before open: ${JSON.stringify(r)}`))]);
      for (const n of range(1, N)) await comet.publish(channel, { n });
      const { code, lines, stderr } = await done;
      const brief = `${JSON.stringify(lines)}\n${stderr}`;
      assert.equal(code, 0, brief);
      assert.equal(lines[0].version, '0.1.0');
      assert.ok(lines[0].resolved.includes(`${path.sep}app${path.sep}node_modules${path.sep}comet-push-client${path.sep}`), `resolved from the installed package: ${lines[0].resolved}`);
      assert.equal(lines[1].react, 'ERR_MODULE_NOT_FOUND', brief);
      assert.match(lines[1].message, /'react'/, 'only the react entry needs react');
      const msgs = lines.filter((l) => 'msg' in l);
      assert.deepEqual(msgs.map((l) => l.msg), range(1, N), brief);
      assert.ok(msgs.every((l) => l.channel === channel));
      assert.deepEqual(lines.filter((l) => l.error), [], brief);
      const opens = lines.filter((l) => l.open).map((l) => l.open);
      if (variant === 'default transports') {
        assert.deepEqual(lines.filter((l) => l.skip).map((l) => l.skip), ['jsonp'], 'jsonp is skipped without a DOM');
        assert.match(lines.find((l) => l.skip).reason, /needs a DOM/);
        assert.equal(opens[0], 'sse', 'sse over fetch streaming');
        assert.equal(lines.filter((l) => l.eventsource).length, 0);
      } else if (variant === 'poll') {
        assert.equal(opens[0], 'poll');
      } else {
        assert.equal(opens[0], 'sse');
        const es = lines.filter((l) => l.eventsource);
        assert.ok(es.length >= 1, `options.EventSource was used: ${brief}`);
        assert.match(es[0].eventsource, /\/v1\/sse\?channel=/);
      }
    });
  }

  test('(b) esbuild bundle of the package + comet-push-client/react runs in Chromium and renders messages', TEST_OPTS, async (t) => {
    const { js, inputs } = await bundle(path.join(proj, 'react-app.js'), { absWorkingDir: proj, mode: 'production' });
    assert.ok(inputs.some((i) => i.endsWith('node_modules/comet-push-client/react.js')), `the installed package was bundled: ${inputs}`);
    assert.ok(inputs.some((i) => i.endsWith('node_modules/comet-push-client/transports.js')));
    assert.ok(!inputs.some((i) => i.startsWith(path.relative(proj, CLIENT_DIR))), 'not the repo copy');
    const { origin, page, pageErrors } = await openStaticPage(
      t,
      { '/': ['text/html', APP_PAGE], '/app.js': ['application/javascript', js] },
      { width: 800, height: 500 },
    );
    const channel = uniqueChannel('pkg-bundle');
    await page.goto(`${origin}/?url=${encodeURIComponent(comet.url)}&feeds=${encodeURIComponent(`A:${channel}`)}`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open', null, { timeout: 15000 });
    for (const n of range(1, 5)) await comet.publish(channel, { n });
    await page.waitForFunction(() => document.querySelectorAll('#feed-A li').length >= 5, null, { timeout: 15000 });
    assert.deepEqual(await page.$$eval('#feed-A li', (els) => els.map((e) => e.textContent)), range(1, 5).map((n) => `v1:${n}`));
    assert.deepEqual(await page.evaluate(() => window.calls.A), range(1, 5).map((n) => `v1:${n}`));
    assert.deepEqual(pageErrors, []);
    await page.screenshot({ path: path.join(SHOTS, 'package-bundle.png') });
  });

  test('(c) <script type="module"> importing /client/comet.js from the runner (cross-origin) loads its modules and receives messages', TEST_OPTS, async (t) => {
    // The runner's files component embeds client/ at build time: it must serve this tree.
    for (const f of ['comet.js', ...relativeImports(readFileSync(path.join(CLIENT_DIR, 'comet.js'), 'utf8'))]) {
      const res = await fetch(`${comet.url}/client/${f}`);
      const body = await res.text();
      assert.equal(res.status, 200, `/client/${f}`);
      assert.ok(body === readFileSync(path.join(CLIENT_DIR, f), 'utf8'), `/client/${f} is client/${f} (rebuild comet-fn-files if client/ changed)`);
    }
    assert.equal((await fetch(`${comet.url}/client/react.js`)).status, 404, 'react.js (bare import) is npm-only');
    const channel = uniqueChannel('pkg-module');
    const html = `<!doctype html><meta charset="utf-8"><ol id="log"></ol><script type="module">
      import { Comet } from '${comet.url}/client/comet.js';
      const c = (window.c = new Comet({ url: '${comet.url}', channels: [${JSON.stringify(channel)}], autoOpen: true }));
      c.on('channel', (e) => { const li = document.createElement('li'); li.textContent = e.data.n; document.getElementById('log').append(li); });
    </script>`;
    const { origin, page, pageErrors } = await openStaticPage(t, { '/': ['text/html', html] }, { width: 600, height: 400 });
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.c?.state === 'open', null, { timeout: 15000 });
    for (const n of range(1, 4)) await comet.publish(channel, { n });
    await page.waitForFunction(() => document.querySelectorAll('#log li').length >= 4, null, { timeout: 15000 });
    assert.deepEqual(await page.$$eval('#log li', (els) => els.map((e) => Number(e.textContent))), range(1, 4));
    assert.deepEqual(pageErrors, []);
  });
});
