// The operator page on the runner's admin listener (`GET /` there), in headless Chromium
// against the real runner:
// - a channel with held subscribers (two SSE streams and a long-poll opened from Node) is
//   listed with its subscriber count and its head (last seq, from the app's /v1/channels);
// - the publish form (publish key typed in) publishes through the app's API, and the live tail
//   of that channel shows the message;
// - a wrong key is refused in the page with the server's code, and nothing is published;
// - the metrics cards and the readiness badge show live values;
// - when the subscribers go away, the count drops back.
// Screenshot: target/node-tests/operator.png.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { BACKENDS, sleep, startComet, uniqueChannel } from './support/server.mjs';
import { SHOTS, launchChromium } from './support/chromium.mjs';

const WAIT_MS = 15000;

/** Opens an SSE stream from Node and waits for its `ready` event; returns its abort. */
async function holdSse(url, channel) {
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/sse?channel=${encodeURIComponent(channel)}`, { signal: ac.signal });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let text = '';
  while (!text.includes('event: ready')) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'stream ended before ready');
    text += new TextDecoder().decode(value);
  }
  return () => ac.abort();
}

describe('operator page (admin listener)', () => {
  let browser;
  before(async () => {
    browser = await launchChromium({ width: 1100, height: 900 });
  });
  after(async () => {
    await browser?.close();
  });

  for (const backend of BACKENDS) {
    test(`lists held channels, publishes, tails and shows metrics (${backend})`, { timeout: 90000 }, async (t) => {
      const comet = await startComet({ backend });
      t.after(() => comet.stop());
      assert.ok(comet.adminUrl, 'the runner prints its admin URL');
      const channel = uniqueChannel('ops');
      await comet.publish(channel, { warm: 1 });
      await comet.publish(channel, { warm: 2 });

      const stops = [await holdSse(comet.url, channel), await holdSse(comet.url, channel)];
      const poll = new AbortController();
      const polling = fetch(`${comet.url}/v1/poll?channel=${encodeURIComponent(channel)}&timeout=30`, {
        signal: poll.signal,
      }).catch(() => null);

      const page = await browser.context.newPage();
      const pageErrors = [];
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      t.after(() => page.close().catch(() => {}));
      await page.goto(`${comet.adminUrl}/`);

      const row = `tr[data-channel="${channel}"]`;
      await page.waitForFunction(
        (sel) => document.querySelector(`${sel} td.subscribers`)?.textContent === '3',
        row,
        { timeout: WAIT_MS },
      );
      assert.equal(await page.textContent(`${row} td.head`), '2', 'head = last seq from the app');
      assert.equal(await page.textContent('#ready'), 'ready');
      const connections = Number(await page.textContent('[data-metric="connections"] b'));
      assert.ok(connections >= 3, `connections card shows the held ones (${connections})`);

      // Tail the channel, then publish through the form with a wrong key, then the right one.
      await page.click(`${row} button`);
      await page.waitForFunction(() => document.querySelector('#tail')?.textContent.includes('tailing'), null, {
        timeout: WAIT_MS,
      });
      await page.fill('#pub-channel', channel);
      await page.fill('#pub-data', '{"text":"from the operator"}');
      await page.fill('#pub-key', 'wrong-key');
      await page.click('#publish-form button');
      await page.waitForFunction(() => document.querySelector('#pub-result').textContent.startsWith('refused'), null, {
        timeout: WAIT_MS,
      });
      assert.match(await page.textContent('#pub-result'), /^refused: unauthorized/);
      await page.fill('#pub-key', comet.publishKey);
      await page.click('#publish-form button');
      await page.waitForFunction(() => document.querySelector('#pub-result').textContent === 'published seq 3', null, {
        timeout: WAIT_MS,
      });
      await page.waitForFunction(
        () => document.querySelector('#tail').textContent.includes('"text":"from the operator"'),
        null,
        { timeout: WAIT_MS },
      );
      const tailed = await page.$$eval('#tail div', (els) =>
        els.map((e) => e.textContent).filter((t) => t.includes('from the operator')),
      );
      assert.equal(tailed.length, 1, 'the tail shows the message once');
      assert.equal(JSON.parse(tailed[0]).seq, 3);
      await page.waitForFunction((sel) => document.querySelector(`${sel} td.head`)?.textContent === '3', row, {
        timeout: WAIT_MS,
      });
      const history = await (await fetch(`${comet.url}/v1/history/${encodeURIComponent(channel)}`)).json();
      assert.deepEqual(history.messages.map((m) => m.data), [{ warm: 1 }, { warm: 2 }, { text: 'from the operator' }]);
      await page.screenshot({ path: path.join(SHOTS, `operator-${backend}.png`) });

      // The long-poll was answered by the publish; the streams go away: the count drops.
      await polling;
      for (const stop of stops) stop();
      poll.abort();
      // The page's own tail is one subscriber of the channel; stop it too.
      await page.click('#tail-stop');
      await page.waitForFunction(
        (sel) => {
          const cell = document.querySelector(`${sel} td.subscribers`);
          return !cell || cell.textContent === '0';
        },
        row,
        { timeout: WAIT_MS },
      );
      await sleep(100);
      assert.deepEqual(pageErrors, [], 'no page errors');
    });
  }
});
