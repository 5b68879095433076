// comet-push-client/react (client/react.js) in headless Chromium: a React 19 app in
// StrictMode (development build, so effects mount, unmount and mount again), bundled by
// esbuild through the package's `exports` (node_modules/comet-push-client -> client/),
// against a real runner. Proves: both feeds mounting in one commit (and StrictMode's double
// mount) open ONE subscribe request; published messages reach the DOM once each; a new
// handler is used without resubscribing; a channel shared by two components stays subscribed
// until the last unmounts; unmounting unsubscribes (the channel set shrinks, the handler is
// not called again). Screenshot target/node-tests/react.png.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { APP_PAGE, bundle, startStaticServer } from './support/bundle.mjs';
import { SHOTS, launchChromium } from './support/chromium.mjs';
import { BACKENDS, nodeTestsDir, repoRoot, sleep, startComet, uniqueChannel } from './support/server.mjs';

const WAIT = { timeout: 15000 };
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const backend = BACKENDS[0];
describe(`comet-push-client/react useChannel in headless Chromium [${backend}]`, () => {
  let work;
  let comet;
  let pages;
  let browser;
  before(async () => {
    // An app directory whose node_modules/comet-push-client is this repo's client/.
    work = mkdtempSync(path.join(tmpdir(), 'comet-react-'));
    mkdirSync(path.join(work, 'node_modules'));
    symlinkSync(path.join(repoRoot, 'client'), path.join(work, 'node_modules', 'comet-push-client'), 'dir');
    copyFileSync(path.join(nodeTestsDir, 'support', 'react-app.js'), path.join(work, 'react-app.js'));
    const { js } = await bundle(path.join(work, 'react-app.js'), { absWorkingDir: work });
    pages = await startStaticServer({ '/': ['text/html', APP_PAGE], '/app.js': ['application/javascript', js] });
    comet = await startComet({ backend });
    browser = await launchChromium({ width: 900, height: 600 });
  });
  after(async () => {
    await browser?.close();
    await pages?.close();
    await comet?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('mount, StrictMode, messages, latest handler, shared channel, unmount', { timeout: 60000 }, async (t) => {
    const page = await browser.context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(`console: ${m.text()} (${m.location().url})`));
    t.after(() => page.close().catch(() => {}));
    const chA = uniqueChannel('react-a');
    const chB = uniqueChannel('react-b');
    await page.goto(`${pages.origin}/?url=${encodeURIComponent(comet.url)}&feeds=${encodeURIComponent(`A:${chA},B:${chB}`)}`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open', null, WAIT);
    const sse = () => page.evaluate(() => window.requests.filter((u) => u.includes('/v1/sse')));
    const channelsOf = (u) => new URL(u).searchParams.getAll('channel');
    const texts = (id) => page.$$eval(`#feed-${id} li`, (els) => els.map((e) => e.textContent));
    const waitLis = (id, n) =>
      page.waitForFunction(([i, k]) => document.querySelectorAll(`#feed-${i} li`).length >= k, [id, n], WAIT).catch(async (e) => {
        const seen = await page.evaluate(() => ({ calls: window.calls, errors: window.errors, state: window.comet.state, channels: [...window.comet.channels], requests: window.requests }));
        throw new Error(`#feed-${id}: fewer than ${n} items: ${JSON.stringify(seen)}`, { cause: e });
      });

    // Two feeds, mounted twice by StrictMode: one request with both channels.
    await sleep(300);
    let reqs = await sse();
    assert.equal(reqs.length, 1, `one subscribe request: ${reqs.join('\n')}`);
    assert.deepEqual(channelsOf(reqs[0]), [chA, chB]);

    for (const n of range(1, 3)) await comet.publish(chA, { n });
    for (const n of range(4, 5)) await comet.publish(chB, { n });
    await waitLis('A', 3);
    await waitLis('B', 2);
    assert.deepEqual(await texts('A'), ['v1:1', 'v1:2', 'v1:3']);
    assert.deepEqual(await texts('B'), ['v1:4', 'v1:5']);
    // One listener per mounted hook, whatever StrictMode did.
    assert.deepEqual(await page.evaluate(() => window.calls), { A: ['v1:1', 'v1:2', 'v1:3'], B: ['v1:4', 'v1:5'] });

    // A re-render with a new handler: the new one is called, nothing resubscribes.
    await page.evaluate(() => window.app.relabel('A', 'v2'));
    await comet.publish(chA, { n: 6 });
    await waitLis('A', 4);
    assert.equal((await texts('A'))[3], 'v2:6');
    assert.equal((await sse()).length, 1, 'no resubscribe for a new handler');

    // A second component on channel A; then the first unmounts: A stays subscribed.
    await page.evaluate((ch) => window.app.mount('A2', ch), chA);
    await comet.publish(chA, { n: 7 });
    await waitLis('A2', 1);
    await waitLis('A', 5);
    await page.evaluate(() => window.app.unmount('A'));
    await sleep(200);
    assert.equal(await page.evaluate((ch) => window.comet.channels.has(ch), chA), true, 'A still used by A2');
    assert.equal((await sse()).length, 1, 'sharing and releasing A changed nothing on the wire');
    assert.equal(await page.$('#feed-A'), null);

    // B unmounts: unsubscribed, one new request without it, its handler never runs again.
    await page.evaluate(() => window.app.unmount('B'));
    await page.waitForFunction(() => window.requests.filter((u) => u.includes('/v1/sse')).length >= 2, null, WAIT);
    reqs = await sse();
    assert.deepEqual(channelsOf(reqs[1]), [chA]);
    assert.deepEqual(await page.evaluate(() => [...window.comet.channels]), [chA]);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open', null, WAIT);
    await comet.publish(chB, { n: 8 });
    await comet.publish(chA, { n: 9 });
    await waitLis('A2', 2);
    await sleep(300);
    const calls = await page.evaluate(() => window.calls);
    assert.deepEqual(calls.B, ['v1:4', 'v1:5'], 'no handler call after unmount');
    assert.deepEqual(calls.A, ['v1:1', 'v1:2', 'v1:3', 'v2:6', 'v2:7'], 'nothing after unmount');
    assert.deepEqual(calls.A2, ['v1:7', 'v1:9']);
    assert.deepEqual(await texts('A2'), ['v1:7', 'v1:9']);
    assert.deepEqual(await page.evaluate(() => window.errors.filter((e) => e.fatal)), []);
    assert.deepEqual(pageErrors, []);
    await page.screenshot({ path: path.join(SHOTS, 'react.png') });
  });
});
