// The demo chat (client/demo/index.html) as the runner serves it at /client/demo/, in two
// headless Chromium pages against the real runner with SPIN_VARIABLE_CLIENT_PUBLISH='chat-*':
// - a message published over HTTP before a page joins shows up from history on join;
// - a message sent from page 1 (send() → POST /v1/send) reaches page 2 with its nickname, and
//   page 1 shows it once (its send() answer and its live echo are one row);
// - chat text is shown as text, never as HTML;
// - the transport indicator names the real transport (`&transports=poll` forces one);
// - going offline shows the reconnect indicator, and after it nothing is lost or doubled;
// - a channel outside client_publish explains the `publish_forbidden` refusal in the page.
// Screenshot: target/node-tests/demo-chat.png (the source of client/demo/screenshot.png).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { BACKENDS, repoRoot, sleep, startComet, uniqueChannel } from './support/server.mjs';
import { SHOTS, launchChromium } from './support/chromium.mjs';

const DEMO = readFileSync(path.join(repoRoot, 'client', 'demo', 'index.html'), 'utf8');
const TRANSPORTS = ['sse', 'stream', 'poll', 'jsonp'];
const WAIT_MS = 15000;
const TEST_OPTS = { timeout: 90000 };

describe('demo chat (client/demo/) in two headless Chromium pages', () => {
  let browser;
  let setupError;
  before(async () => {
    try {
      browser = await launchChromium({ width: 900, height: 600 });
    } catch (e) {
      setupError = e;
    }
  });
  after(async () => {
    await browser?.close();
  });

  /** Opens the demo at `query`, sets the nickname and waits until it is connected. */
  async function openChat(t, comet, query, nick) {
    if (setupError) throw setupError;
    const page = await browser.context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    t.after(async () => {
      await page.evaluate(() => window.comet?.close()).catch(() => {});
      await page.close().catch(() => {});
    });
    await page.goto(`${comet.url}/client/demo/?${query}`);
    await page.waitForFunction(() => window.comet?.state === 'open', null, { timeout: WAIT_MS });
    await page.fill('#nick', nick);
    return { page, pageErrors };
  }

  /** The chat rows of `page`: [{nick, text, source, key}], in page order. */
  const rows = (page) =>
    page.$$eval('#log li.msg', (els) =>
      els.map((li) => ({
        nick: li.querySelector('.nick').textContent,
        text: li.querySelector('.text').textContent,
        source: li.dataset.source,
        key: li.dataset.key,
      })),
    );

  /** Waits until `page` shows a row with `text`; returns all rows. */
  async function waitText(page, text, what) {
    try {
      await page.waitForFunction(
        (t) => [...document.querySelectorAll('#log li.msg .text')].some((e) => e.textContent === t),
        text,
        { timeout: WAIT_MS, polling: 50 },
      );
    } catch (e) {
      throw new Error(`${what}: "${text}" not shown; rows ${JSON.stringify(await rows(page))}, ` +
        `state "${await page.textContent('#state')}" (${e.message.split('\n')[0]})`);
    }
    return rows(page);
  }

  async function say(page, text) {
    await page.fill('#text', text);
    await page.click('#sendBtn');
  }

  const count = (list, text) => list.filter((r) => r.text === text).length;

  for (const backend of BACKENDS) {
    describe(`[${backend}]`, () => {
      let comet;
      before(async () => {
        comet = await startComet({ backend, env: { SPIN_VARIABLE_CLIENT_PUBLISH: 'chat-*' } });
      });
      after(async () => {
        await comet?.stop();
      });

      test('two pages chat: history on join, live both ways, each message once, real transport', TEST_OPTS, async (t) => {
        const served = await fetch(`${comet.url}/client/demo/`).then((r) => r.text());
        assert.ok(served === DEMO, 'the runner serves this client/demo/index.html: rebuild comet-fn-files ' +
          '(cargo build --release --target wasm32-wasip2 -p comet-fn-files) after editing it');
        const channel = uniqueChannel('chat-lobby');
        const q = `channel=${encodeURIComponent(channel)}`;
        const welcome = 'Welcome! Chat text is shown as text: <b>not bold</b> & "quoted"';
        await comet.publish(channel, { nick: 'comet-bot', text: welcome });

        const alice = await openChat(t, comet, q, 'alice');
        let a = await waitText(alice.page, welcome, 'alice: history on join');
        assert.deepEqual(a, [{ nick: 'comet-bot', text: welcome, source: 'history', key: a[0].key }]);

        // Published after alice joined but before bob did: alice gets it live, bob from history.
        const early = 'Published before bob joined: he gets it from history';
        await comet.publish(channel, { nick: 'comet-bot', text: early });
        a = await waitText(alice.page, early, 'alice: live HTTP publish');
        assert.equal(a.find((r) => r.text === early).source, 'live');

        const bob = await openChat(t, comet, `${q}&transports=poll`, 'bob');
        const b0 = await waitText(bob.page, early, 'bob: history on join');
        assert.deepEqual(b0.map((r) => [r.nick, r.text, r.source]), [
          ['comet-bot', welcome, 'history'],
          ['comet-bot', early, 'history'],
        ]);

        const hello = 'hi bob! <img src=x onerror="window.pwned=1">';
        await say(alice.page, hello);
        const b1 = await waitText(bob.page, hello, 'bob: alice\'s message');
        assert.deepEqual(b1.filter((r) => r.text === hello).map((r) => [r.nick, r.source]), [['alice', 'live']]);
        const reply = 'hello alice — live here over long-poll';
        await say(bob.page, reply);
        await waitText(alice.page, reply, 'alice: bob\'s reply');
        // Ordered after the echoes of both chat messages: once it is shown, any duplicate is too.
        const marker = 'Two people in the lobby now.';
        await comet.publish(channel, { nick: 'comet-bot', text: marker });
        const a2 = await waitText(alice.page, marker, 'alice: marker');
        const b2 = await waitText(bob.page, marker, 'bob: marker');
        for (const [who, list] of [['alice', a2], ['bob', b2]]) {
          assert.deepEqual(list.map((r) => r.text), [welcome, early, hello, reply, marker], `${who}: every message once, in order`);
          assert.equal(new Set(list.map((r) => r.key)).size, list.length, `${who}: distinct (channel, epoch, seq)`);
        }
        assert.equal(count(a2, hello), 1, 'alice shows her own message once (send answer + live echo)');
        // Her page got it twice, from the send() answer and as the live echo (whichever came first
        // made the row), and dropped the other; so did bob's for his reply.
        assert.ok(['sent', 'live'].includes(a2.find((r) => r.text === hello).source));
        assert.ok(await alice.page.evaluate(() => window.chatStats.duplicates) >= 1, 'alice dropped a duplicate');
        assert.ok(await bob.page.evaluate(() => window.chatStats.duplicates) >= 1, 'bob dropped a duplicate');
        assert.deepEqual(a2.find((r) => r.text === reply).nick, 'bob');
        // Text, not HTML.
        for (const p of [alice.page, bob.page]) {
          assert.equal(await p.$$eval('#log b, #log img', (els) => els.length), 0, 'no HTML from chat text');
          assert.equal(await p.evaluate(() => window.pwned), undefined);
        }

        // The indicator shows the transport actually in use.
        const ta = await alice.page.textContent('#transport');
        assert.ok(TRANSPORTS.includes(ta), `alice's transport indicator: "${ta}"`);
        assert.equal(ta, await alice.page.evaluate(() => window.comet.transport));
        assert.equal(await bob.page.textContent('#transport'), 'poll', '&transports=poll');
        assert.equal(await alice.page.textContent('#state'), 'open');

        if (backend === BACKENDS[0]) {
          await sleep(1300); // let the new-row highlight fade
          await alice.page.screenshot({ path: path.join(SHOTS, 'demo-chat.png') });
        }
        assert.deepEqual([...alice.pageErrors, ...bob.pageErrors], []);
      });

      test('offline: the reconnect indicator counts attempts; afterwards nothing is lost or doubled', TEST_OPTS, async (t) => {
        const channel = uniqueChannel('chat-demo-offline');
        const q = `channel=${encodeURIComponent(channel)}`;
        const { page, pageErrors } = await openChat(t, comet, q, 'carol');
        t.after(() => browser.context.setOffline(false));
        await browser.context.setOffline(true);
        await page.waitForFunction(
          () => /^reconnecting in \d+ s · attempt [1-9]\d*$/.test(document.getElementById('state').textContent) &&
            document.getElementById('state').classList.contains('reconnecting'),
          null,
          { timeout: WAIT_MS, polling: 20 },
        );
        const missed = 'published while carol was offline';
        await comet.publish(channel, { nick: 'comet-bot', text: missed });
        await browser.context.setOffline(false);
        await page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: WAIT_MS });
        const list = await waitText(page, missed, 'carol: the message missed while offline');
        await say(page, 'back online');
        const after = await waitText(page, 'back online', 'carol: own message after reconnecting');
        assert.deepEqual(after.map((r) => r.text), [missed, 'back online'], JSON.stringify(list));
        assert.deepEqual(pageErrors, []);
      });

      if (backend !== BACKENDS[0]) return;

      test('a channel outside client_publish: sending is refused with a clear message in the page', TEST_OPTS, async (t) => {
        const channel = uniqueChannel('lobby');
        const { page, pageErrors } = await openChat(t, comet, `channel=${encodeURIComponent(channel)}`, 'dave');
        assert.equal(await page.isHidden('#notice'), true);
        await say(page, 'can anyone hear me?');
        await page.waitForSelector('#notice:not([hidden])', { timeout: WAIT_MS });
        const text = await page.textContent('#notice');
        assert.match(text, /does not let browsers post to/);
        assert.match(text, /SPIN_VARIABLE_CLIENT_PUBLISH='chat-\*'/);
        assert.deepEqual(await rows(page), [], 'nothing was shown as sent');
        assert.equal(await page.inputValue('#text'), 'can anyone hear me?', 'the text is kept');
        // Reading still works on that channel (e.g. ?channel=demo-ticker).
        await comet.publish(channel, 'tick 1');
        assert.deepEqual((await waitText(page, 'tick 1', 'dave: a published tick')).map((r) => r.nick), ['·']);
        assert.deepEqual(pageErrors, []);
      });
    });
  }
});
