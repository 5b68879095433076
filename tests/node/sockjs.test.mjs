// sockjs-client 1.6.1 (the npm package's browser build) in headless Chromium against Comet's
// SockJS endpoint, from a page on another origin. Every HTTP transport is forced in turn
// (`new SockJS(url, null, {transports: [name]})`); /info says websocket:false, so nothing else
// is tried. The iframe transports load iframe.html from Comet, which loads the same
// sockjs.min.js from this page's server (SPIN_VARIABLE_SOCKJS_URL): versions must match.
//
// - tests/sockjs/spin.toml (SockJS's protocol-test services): /echo round trips tricky text in
//   order; /close ends each session at once with 3000 "Go away!".
// - spin.toml (/comet, the Jii-comet protocol): `subscribe <ch>`, then messages published over
//   /v1/publish arrive as `channel <ch> <data>`, in order; `action` replies carry requestUid.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  BACKENDS,
  nodeTestsDir,
  sleep,
  startComet,
  uniqueChannel,
} from './support/server.mjs';
import { SHOTS, launchChromium } from './support/chromium.mjs';

const PAGE = readFileSync(
  path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'sockjs-page.html'),
);
const SOCKJS_DIR = path.join(nodeTestsDir, 'node_modules', 'sockjs-client');
const SOCKJS_VERSION = '1.6.1';

/** Every bounded wait in this file. */
const WAIT_MS = 15000;
/** A test as a whole (open + round trips + close); generous, every wait inside is bounded. */
const TEST_OPTS = { timeout: 60000 };

/** The transports sockjs-client can use without WebSocket, and the endpoint each receives on. */
const TRANSPORTS = {
  'xhr-streaming': 'xhr_streaming',
  'xhr-polling': 'xhr',
  eventsource: 'eventsource',
  'iframe-eventsource': 'eventsource',
  'iframe-htmlfile': 'htmlfile',
  'jsonp-polling': 'jsonp',
};

/** Echoed text that each transport's framing or escaping could get wrong. */
const TRICKY = [
  'hello',
  'żółw ✓ 日本語 Ünïcödé',
  'line\u2028separator\u2029paragraph',
  'emoji 😀🎉 👩‍👩‍👧 flag 🇵🇱',
  'quotes "double" \'single\' `back` \\backslash\\',
  '</script><script>window.pwned=1</script><!--',
  '100% %25 %0A %zz %',
  'multi\nline\r\ntext\ttab',
  '',
  'ctrl \u0000 \u0001 \u001f \u007f',
  'invisible \u200c\u200d\u200e\u2060\ufeff\ufff0\uffff',
  '["not","an",{"array":1}]',
  'c[3000,"Go away!"]',
  'x'.repeat(5000),
];
const MORE = ['second batch 1', 'second batch 2 🚀', 'second batch 3 %\u2028</script>'];

/** What Node publishes to a Jii channel (the page must get `channel <ch> <text>` for each). */
const PUBLISHED = [
  'hello',
  { n: 1 },
  'ünïcödé 😀 "quoted" </script> 100% \u2028 line\nbreak',
  [1, 'two', { three: 3 }],
  42,
  true,
  '',
];
const BURST = Array.from({ length: 10 }, (_, i) => ({ n: i + 2 }));
const pushText = (channel, data) =>
  `channel ${channel} ${typeof data === 'string' ? data : JSON.stringify(data)}`;

const escapeRe = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A session id sockjs-client will use (its option `sessionId` as a function). */
const sessionId = () => `s${Math.random().toString(36).slice(2, 12)}`;

/** Serves the test page and sockjs.min.js on their own loopback origin. */
async function startPageServer() {
  const script = readFileSync(path.join(SOCKJS_DIR, 'dist', 'sockjs.min.js'));
  // Who loaded sockjs.min.js: the Referer's origin (this page, or Comet's iframe.html).
  const scriptReferers = new Set();
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    if (pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
    } else if (pathname === '/sockjs.min.js') {
      const referer = req.headers.referer;
      scriptReferers.add(referer ? new URL(referer).origin : '(none)');
      res.writeHead(200, {
        'content-type': 'application/javascript; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(script);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    scriptReferers,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(r);
      }),
  };
}

describe(`sockjs-client ${SOCKJS_VERSION} in headless Chromium, cross-origin`, () => {
  let context;
  let browser;
  let pageServer;

  // A setup failure (e.g. no Chromium) fails every test, never skips: CI installs Chromium.
  let setupError;
  before(async () => {
    try {
      const installed = JSON.parse(readFileSync(path.join(SOCKJS_DIR, 'package.json'), 'utf8'));
      assert.equal(installed.version, SOCKJS_VERSION, 'node_modules/sockjs-client version');
      browser = await launchChromium({ width: 1100, height: 900 });
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

  /**
   * One runner (`startOpts`) and one page for the enclosing describe block. The page is
   * closed before the runner stops (its held requests would keep the runner draining).
   */
  function useSuite(startOpts) {
    const s = { comet: null, page: null, pageErrors: [], requests: [] };
    before(async () => {
      if (setupError) throw setupError;
      s.comet = await startComet({
        ...startOpts,
        env: {
          SPIN_VARIABLE_SOCKJS_URL: `${pageServer.origin}/sockjs.min.js`,
          // Actions are denied unless allowed; the Jii tests call the example actions.
          SPIN_VARIABLE_CLIENT_ACTIONS: '*',
          ...startOpts.env,
        },
      });
      assert.notEqual(new URL(s.comet.url).origin, pageServer.origin, 'different origins');
      s.page = await context.newPage();
      s.page.on('pageerror', (e) => s.pageErrors.push(String(e)));
      // Requests of the page and of its iframes (Comet's iframe.html, htmlfile, jsonp scripts).
      s.page.on('request', (r) => {
        if (r.url().startsWith(s.comet.url)) s.requests.push(`${r.method()} ${r.url()}`);
      });
      await s.page.goto(`${pageServer.origin}/`);
      assert.equal(await s.page.evaluate(() => SockJS.version), SOCKJS_VERSION);
    });
    after(async () => {
      await s.page?.evaluate(() => window.closeAll()).catch(() => {});
      await s.page?.close().catch(() => {});
      await s.comet?.stop();
    });
    return s;
  }

  /** The connection's state in the page, re-read until `pred(conn)`; bounded by WAIT_MS. */
  async function waitConn(s, name, pred, what) {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const c = await s.page.evaluate((n) => window.conns[n], name);
      if (c && pred(c)) return c;
      if (Date.now() > deadline) {
        const shown = c && { ...c, messages: c.messages.map((m) => (m.length > 200 ? `${m.slice(0, 200)}…` : m)) };
        throw new Error(
          `${name}: timed out after ${WAIT_MS} ms waiting for ${what}\n` +
            `connection: ${JSON.stringify(shown, null, 1)}\n` +
            `page errors: ${JSON.stringify(s.pageErrors)}\n` +
            `last requests to Comet:\n  ${s.requests.slice(-12).join('\n  ')}\n` +
            `runner log tail:\n${s.comet.logs().split('\n').slice(-15).join('\n')}`,
        );
      }
      await sleep(40);
    }
  }

  /** Opens a SockJS connection `name` in the page; closed again when test `t` ends. */
  async function openSock(s, t, { name, route, transport, sid }) {
    const errorsBefore = s.pageErrors.length;
    await s.page.evaluate((a) => window.openSock(a), {
      name,
      url: `${s.comet.url}${route}`,
      transport,
      sessionId: sid,
    });
    t.after(async () => {
      await s.page.evaluate((n) => window.closeSock(n), name).catch(() => {});
    });
    const c = await waitConn(s, name, (c) => c.events.length > 0, 'onopen (or onclose)');
    assert.deepEqual(
      c.events.slice(0, 1),
      ['open'],
      `${name}: opened (close: ${JSON.stringify(c.close)})`,
    );
    assert.equal(c.transport, transport, `${name}: sock.transport is the forced transport`);
    return () => s.pageErrors.slice(errorsBefore);
  }

  /** The transport's receiving endpoint was requested for session `sid`, never `websocket`. */
  function assertEndpoint(s, route, sid, transport) {
    const endpoint = TRANSPORTS[transport];
    const base = `${s.comet.url}${route}/`;
    const ours = s.requests.filter((r) => r.includes(`/${sid}/`));
    assert.ok(
      ours.some((r) => new RegExp(`^(GET|POST) ${escapeRe(base)}[^/]+/${sid}/${endpoint}(\\?|$)`).test(r)),
      `${transport} received on /${endpoint}: ${JSON.stringify(ours)}`,
    );
    assert.ok(
      ours.every((r) => !r.includes('/websocket')),
      `no websocket attempt: ${JSON.stringify(ours)}`,
    );
    if (transport.startsWith('iframe-')) {
      assert.ok(
        s.requests.some((r) => r.startsWith(`GET ${base}iframe.html`)),
        'iframe.html was loaded from Comet',
      );
      assert.ok(
        pageServer.scriptReferers.has(new URL(s.comet.url).origin),
        `Comet's iframe.html loaded sockjs.min.js from the page server: ${[...pageServer.scriptReferers]}`,
      );
    }
  }

  for (const backend of BACKENDS) {
    describe(`[${backend}] SockJS test services (tests/sockjs/spin.toml)`, () => {
      const s = useSuite({ backend, manifest: '../sockjs/spin.toml' });

      for (const transport of Object.keys(TRANSPORTS)) {
        test(`${transport}: /echo round-trips ${TRICKY.length + MORE.length} tricky messages, in order`, TEST_OPTS, async (t) => {
          const name = `echo ${transport}`;
          const sid = sessionId();
          const newErrors = await openSock(s, t, { name, route: '/echo', transport, sid });

          await s.page.evaluate(([n, m]) => window.sendSock(n, m), [name, TRICKY]);
          let c = await waitConn(
            s,
            name,
            (c) => c.messages.length >= TRICKY.length || c.close,
            `${TRICKY.length} echoes`,
          );
          assert.deepEqual(c.messages, TRICKY, `${transport}: first batch echoed exactly, in order`);

          await s.page.evaluate(([n, m]) => window.sendSock(n, m), [name, MORE]);
          c = await waitConn(
            s,
            name,
            (c) => c.messages.length >= TRICKY.length + MORE.length || c.close,
            `${TRICKY.length + MORE.length} echoes`,
          );
          await sleep(200); // a late duplicate would show up now
          c = await s.page.evaluate((n) => window.conns[n], name);
          assert.deepEqual(c.messages, [...TRICKY, ...MORE], `${transport}: everything echoed once, in order`);
          assert.deepEqual(c.events, ['open'], `${transport}: still open`);
          assert.deepEqual(c.sendErrors, []);
          assert.deepEqual(newErrors(), [], 'no page errors');
          assertEndpoint(s, '/echo', sid, transport);
        });

        test(`${transport}: /close ends the session with 3000 "Go away!"`, TEST_OPTS, async (t) => {
          const name = `close ${transport}`;
          const sid = sessionId();
          const newErrors = await openSock(s, t, { name, route: '/close', transport, sid });
          const c = await waitConn(s, name, (c) => c.close, 'onclose');
          assert.deepEqual(c.events, ['open', 'close']);
          assert.deepEqual(c.close, { code: 3000, reason: 'Go away!', wasClean: true });
          assert.deepEqual(c.messages, []);
          assert.deepEqual(newErrors(), [], 'no page errors');
          assertEndpoint(s, '/close', sid, transport);
        });
      }

      test('/disabled_websocket_echo and /cookie_needed_echo echo too; the latter sets JSESSIONID', TEST_OPTS, async (t) => {
        for (const [route, cookieNeeded] of [
          ['/disabled_websocket_echo', false],
          ['/cookie_needed_echo', true],
        ]) {
          const info = await s.page.evaluate(async (url) => {
            const res = await fetch(url, { credentials: 'include' });
            return res.json();
          }, `${s.comet.url}${route}/info`);
          assert.equal(info.websocket, false, `${route}/info websocket`);
          assert.equal(info.cookie_needed, cookieNeeded, `${route}/info cookie_needed`);

          const name = `echo ${route}`;
          const newErrors = await openSock(s, t, { name, route, transport: 'xhr-streaming', sid: sessionId() });
          await s.page.evaluate(([n, m]) => window.sendSock(n, m), [name, MORE]);
          await waitConn(s, name, (c) => c.messages.length >= MORE.length || c.close, `${MORE.length} echoes`);
          const c = await s.page.evaluate((n) => window.conns[n], name);
          assert.deepEqual(c.messages, MORE, `${route}: echoed in order`);
          assert.deepEqual(newErrors(), [], 'no page errors');
        }
        // The cross-origin XHRs carry credentials, so the browser stored Comet's cookie.
        const cookies = await context.cookies(s.comet.url);
        assert.ok(
          cookies.some((k) => k.name === 'JSESSIONID'),
          `JSESSIONID cookie for ${s.comet.url}: ${JSON.stringify(cookies)}`,
        );
      });
    });

    describe(`[${backend}] Jii-comet over SockJS at /comet (spin.toml)`, () => {
      const s = useSuite({ backend });

      /** Opens /comet, subscribes to `channels` and waits until that took effect. */
      async function jiiSession(t, transport, channels) {
        const name = `jii ${transport} ${channels.join(',')}`;
        const sid = sessionId();
        const newErrors = await openSock(s, t, { name, route: '/comet', transport, sid });
        // The action reply is queued after the subscribe was stored (sockjs-client sends in
        // order, the server handles a batch in order), so it proves the subscription is live.
        await s.page.evaluate(([n, m]) => window.sendSock(n, m), [
          name,
          [...channels.map((ch) => `subscribe ${ch}`), 'action echo {"requestUid":"ready"}'],
        ]);
        const c = await waitConn(s, name, (c) => c.messages.length >= 1 || c.close, 'the "ready" action reply');
        assert.deepEqual(c.messages, [
          `action {"params":{"requestUid":"ready"},"session":"${sid}","requestUid":"ready"}`,
        ]);
        return { name, sid, newErrors };
      }

      for (const transport of Object.keys(TRANSPORTS)) {
        test(`${transport}: subscribe; /v1/publish arrives as "channel <ch> <data>", in order`, TEST_OPTS, async (t) => {
          const channel = uniqueChannel('sockjs');
          const { name, sid, newErrors } = await jiiSession(t, transport, [channel]);

          for (const data of PUBLISHED) await s.comet.publish(channel, data);
          await s.comet.publish(BURST.map((data) => ({ channel, data })));
          const expected = [...PUBLISHED, ...BURST].map((d) => pushText(channel, d));
          let c = await waitConn(
            s,
            name,
            (c) => c.messages.length >= 1 + expected.length || c.close,
            `${expected.length} channel pushes`,
          );
          await sleep(200); // a late duplicate would show up now
          c = await s.page.evaluate((n) => window.conns[n], name);
          assert.deepEqual(c.messages.slice(1), expected, `${backend}/${transport}: every message once, in order`);
          assert.deepEqual(c.events, ['open']);
          assert.deepEqual(newErrors(), [], 'no page errors');
          assertEndpoint(s, '/comet', sid, transport);
        });
      }

      test('actions answer with the requestUid; unsubscribe stops pushes; refused publish says why', TEST_OPTS, async (t) => {
        const transport = 'xhr-streaming';
        const [a, b] = [uniqueChannel('sockjs-a'), uniqueChannel('sockjs-b')];
        const { name, sid, newErrors } = await jiiSession(t, transport, [a, b]);
        const send = (messages) => s.page.evaluate(([n, m]) => window.sendSock(n, m), [name, messages]);
        const read = async (count, what) =>
          (await waitConn(s, name, (c) => c.messages.length >= count || c.close, what)).messages;

        await send([
          'action echo {"x":1,"requestUid":"u1"}',
          'action sum {"numbers":[1,2],"requestUid":"u2"}',
          `channel ${a} from the client`,
        ]);
        const [echo, sum, refused] = (await read(4, 'two action replies and a refusal')).slice(1);
        assert.match(echo, /^action \{/);
        assert.deepEqual(JSON.parse(echo.slice('action '.length)), {
          params: { x: 1, requestUid: 'u1' },
          session: sid,
          requestUid: 'u1',
        });
        assert.ok(echo.endsWith(',"requestUid":"u1"}'), `requestUid is the last key: ${echo}`);
        assert.match(sum, /^action \{/);
        assert.deepEqual(JSON.parse(sum.slice('action '.length)), { sum: 3, requestUid: 'u2' });
        assert.match(refused, /^error \{/);
        const why = JSON.parse(refused.slice('error '.length));
        assert.equal(why.command, 'channel');
        assert.equal(why.code, 'publish_forbidden');
        assert.equal(typeof why.message, 'string');

        await send([`unsubscribe ${a}`, 'action echo {"requestUid":"unsubscribed"}']);
        assert.match((await read(5, 'the "unsubscribed" reply'))[4], /"requestUid":"unsubscribed"\}$/);
        await s.comet.publish(a, 'not for us');
        await s.comet.publish(b, 'still subscribed');
        await read(6, `the push on ${b}`);
        await sleep(200);
        const c = await s.page.evaluate((n) => window.conns[n], name);
        assert.deepEqual(c.messages.slice(5), [pushText(b, 'still subscribed')], 'nothing from the unsubscribed channel');
        assert.deepEqual(newErrors(), [], 'no page errors');

        const file = backend === BACKENDS[0] ? 'sockjs.png' : `sockjs-${backend}.png`;
        await s.page.screenshot({ path: path.join(SHOTS, file), fullPage: true });
      });
    });
  }
});
