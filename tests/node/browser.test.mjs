// Headless Chromium (the system's /usr/bin/chromium, driven by playwright-core) loads a page
// from a different origin than Comet, which subscribes with the browser's own EventSource and
// with a fetch long-poll loop. Node publishes; the page must see every message, in order.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { BACKENDS, sleep, startComet, uniqueChannel } from './support/server.mjs';
import { SHOTS, launchChromium } from './support/chromium.mjs';

const PAGE = readFileSync(
  path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'page.html'),
);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Serves the test page on its own loopback origin (so requests to Comet are cross-origin). */
async function startPageServer() {
  const server = http.createServer((req, res) => {
    if (new URL(req.url, 'http://x').pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Polls `page.evaluate(fn)` until it is truthy. */
async function waitInPage(page, fn, { timeoutMs = 15000, describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate(fn)) return;
    if (Date.now() > deadline) {
      const r = await page.evaluate(() => window.results);
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${describe ?? fn}: ` +
          `es=${r.es.length} poll=${r.poll.length} esErrors=${r.esErrors} ` +
          `pollErrors=${JSON.stringify(r.pollErrors)}`,
      );
    }
    await sleep(50);
  }
}

describe('headless Chromium: EventSource + long-poll, cross-origin', () => {
  let context;
  let browser;
  let pageServer;

  // A setup failure (e.g. no Chromium) is reported by every test as a failure, never a skip:
  // CI installs Chromium (.ci/run), so its absence must turn the run red.
  let setupError;
  before(async () => {
    try {
      browser = await launchChromium({ width: 1100, height: 760 });
      context = browser.context;
      pageServer = await startPageServer();
    } catch (e) {
      setupError = e;
    }
  });
  after(async () => {
    await browser?.close();
    await pageServer?.close();
  });

  /** Opens the page for `comet` + `channel` and waits until both transports are positioned. */
  async function openPage(t, comet, channel) {
    if (setupError) throw setupError;
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const close = async () => {
      await page.evaluate(() => window.stopAll?.()).catch(() => {});
      await page.close().catch(() => {});
    };
    t.after(close);
    const url = `${pageServer.origin}/?${new URLSearchParams({ comet: comet.url, channel })}`;
    await page.goto(url);
    await waitInPage(page, () => window.results.esOpen && window.results.pollReady, {
      describe: 'EventSource open and long-poll positioned',
    });
    return { page, pageErrors, close };
  }

  function assertAll(r, channel, ns, label) {
    for (const [name, list] of [
      ['EventSource', r.es],
      ['long-poll', r.poll],
    ]) {
      assert.deepEqual(
        list.map((m) => m.data.n),
        ns,
        `${label}: ${name} got every message once, in order`,
      );
      assert.ok(list.every((m) => m.channel === channel), `${name}: channel`);
      const seqs = list.map((m) => m.seq);
      assert.deepEqual(
        seqs,
        range(seqs[0], seqs[0] + seqs.length - 1),
        `${name}: consecutive seqs`,
      );
    }
    assert.equal(new Set(r.esIds).size, r.esIds.length, 'distinct SSE ids');
    assert.deepEqual(r.pollErrors, [], 'long-poll loop had no errors');
    // Cross-origin: the fetches were CORS responses, allowed by Comet.
    assert.ok(r.pollResponseTypes.length > 0);
    assert.ok(
      r.pollResponseTypes.every((ty) => ty === 'cors'),
      `cors responses: ${r.pollResponseTypes}`,
    );
  }

  for (const backend of BACKENDS) {
    describe(`[${backend}]`, () => {
      let comet;
      before(async () => {
        comet = await startComet({ backend });
      });
      after(async () => {
        await comet?.stop();
      });

      test('EventSource and the long-poll loop in the page each get all 30 messages in order', async (t) => {
        const channel = uniqueChannel('browser');
        const { page, pageErrors } = await openPage(t, comet, channel);
        assert.notEqual(new URL(comet.url).origin, pageServer.origin, 'different origins');
        // What the browser relied on (a CORS response header is not readable from the page).
        const probe = await fetch(`${comet.url}/v1/poll?channel=${channel}&timeout=0`, {
          headers: { Origin: pageServer.origin },
        });
        assert.equal(probe.headers.get('access-control-allow-origin'), '*');
        await probe.arrayBuffer();

        for (const n of range(1, 20)) await comet.publish(channel, { n });
        await comet.publish(range(21, 30).map((n) => ({ channel, data: { n } })));

        await waitInPage(page, () => window.results.es.length >= 30 && window.results.poll.length >= 30, {
          describe: '30 messages on both transports',
        });
        await sleep(300); // a late duplicate would show up now
        const r = await page.evaluate(() => window.results);
        assertAll(r, channel, range(1, 30), backend);
        assert.equal(r.esErrors, 0, 'EventSource never errored');
        assert.deepEqual(pageErrors, []);

        const file = backend === BACKENDS[0] ? 'browser.png' : `browser-${backend}.png`;
        await page.screenshot({ path: path.join(SHOTS, file), fullPage: true });
      });

      test('browser EventSource reconnects by itself when streams end (max_stream_seconds=2)', async (t) => {
        if (setupError) throw setupError;
        const capped = await startComet({
          backend,
          env: { SPIN_VARIABLE_MAX_STREAM_SECONDS: '2' },
        });
        // Close the page (its held SSE request) before stopping the runner, or the runner's
        // drain waits for it.
        let closePage;
        t.after(async () => {
          await closePage?.();
          await capped.stop();
        });
        const channel = uniqueChannel('browser-capped');
        const { page, pageErrors, close } = await openPage(t, capped, channel);
        closePage = close;

        for (const n of range(1, 30)) {
          await capped.publish(channel, { n });
          await sleep(170); // ~5 s: spans at least two server-ended streams
        }
        await waitInPage(page, () => window.results.es.length >= 30 && window.results.poll.length >= 30, {
          describe: '30 messages on both transports across reconnects',
        });
        await sleep(300);
        const r = await page.evaluate(() => window.results);
        assertAll(r, channel, range(1, 30), `${backend}, capped streams`);
        assert.ok(r.esErrors >= 1, `the stream ended and reconnected (${r.esErrors} errors)`);
        assert.ok(r.esOpenEvents >= 2, `Comet sent open on each stream (${r.esOpenEvents})`);
        assert.deepEqual(pageErrors, []);
        await page.screenshot({
          path: path.join(SHOTS, `browser-reconnect-${backend}.png`),
          fullPage: true,
        });
      });

      test('a preflighted cross-origin request (Last-Event-ID header) is allowed', async (t) => {
        const channel = uniqueChannel('browser-preflight');
        const { page } = await openPage(t, comet, channel);
        await comet.publish(channel, { n: 1 });
        await waitInPage(page, () => window.results.es.length >= 1);
        const out = await page.evaluate(
          async ({ url, id }) => {
            const res = await fetch(url, { headers: { 'Last-Event-ID': id } });
            return { status: res.status, type: res.type, body: await res.json() };
          },
          {
            url: `${comet.url}/v1/poll?channel=${encodeURIComponent(channel)}&timeout=0`,
            id: (await page.evaluate(() => window.results.esIds[0])),
          },
        );
        assert.equal(out.status, 200);
        assert.equal(out.type, 'cors');
        assert.deepEqual(out.body.messages, [], 'resumed after message 1 via the header');
      });
    });
  }
});
