// The browser client (client/comet.js) in headless Chromium, from a page on another origin:
// - every native transport (sse, stream, poll, jsonp) and SockJS mode, forced alone, gets every
//   message once, in order;
// - connections killed by a TCP proxy between browser and runner, a proxy that silently stops
//   forwarding (dead stream: the heartbeat watchdog), and offline emulation, all during a steady
//   publish stream: nothing lost, nothing duplicated;
// - the back-off schedule (exponential, full jitter, capped, reset after a stable connection);
// - request() answers, error replies and timeouts (SockJS mode), native-mode refusals;
// - `reset` when retention dropped what the client missed;
// - the demo page (client/demo/index.html), screenshot in target/node-tests/client-demo.png.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { BACKENDS, nodeTestsDir, repoRoot, sleep, startComet, uniqueChannel } from './support/server.mjs';
import { SHOTS, launchChromium } from './support/chromium.mjs';

const CLIENT_DIR = path.join(repoRoot, 'client');
const PAGE = readFileSync(path.join(nodeTestsDir, 'support', 'client-page.html'));
const SOCKJS_JS = path.join(nodeTestsDir, 'node_modules', 'sockjs-client', 'dist', 'sockjs.min.js');
const WAIT_MS = 15000;
const TEST_OPTS = { timeout: 60000 };
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Serves the test page, client/ and sockjs.min.js on the page's own loopback origin. */
async function startPageServer() {
  const files = {
    '/': ['text/html', () => PAGE],
    '/sockjs.min.js': ['application/javascript', () => readFileSync(SOCKJS_JS)],
    // comet.js and the modules it imports (errors.js, tokens.js, transports.js, sockjs.js).
    ...Object.fromEntries(
      readdirSync(CLIENT_DIR)
        .filter((f) => f.endsWith('.js') && f !== 'react.js')
        .map((f) => [`/client/${f}`, ['application/javascript', () => readFileSync(path.join(CLIENT_DIR, f))]]),
    ),
    '/client/demo/': ['text/html', () => readFileSync(path.join(CLIENT_DIR, 'demo', 'index.html'))],
  };
  const server = http.createServer((req, res) => {
    const f = files[new URL(req.url, 'http://x').pathname];
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': `${f[0]}; charset=utf-8`, 'cache-control': 'no-store' });
    res.end(f[1]());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(r);
      }),
  };
}

/**
 * A TCP proxy browser → runner on a fixed port: kill() destroys every connection, freeze()
 * silently stops forwarding on the current ones (a dead stream), stop()/start() refuse/accept.
 */
/**
 * The length of the first complete HTTP/1.1 response in `buf` (by Content-Length, or up to
 * the end of a chunked body), 0 if it is not complete yet.
 */
function completeResponse(buf) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return 0;
  const head = buf.subarray(0, headEnd).toString('latin1');
  const bodyStart = headEnd + 4;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) return buf.length >= bodyStart + Number(length[1]) ? bodyStart + Number(length[1]) : 0;
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    const end = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2);
    return end < 0 ? 0 : end + 7;
  }
  return /^HTTP\/1\.1 (1\d\d|204|304)/.test(head) ? bodyStart : 0;
}

async function startProxy(targetUrl) {
  const target = new URL(targetUrl);
  const pairs = new Set();
  const onConn = (c) => {
    const u = net.connect(Number(target.port), target.hostname);
    const pair = { c, u, frozen: false, held: Buffer.alloc(0) };
    pairs.add(pair);
    c.on('data', (d) => !pair.frozen && u.write(d));
    u.on('data', (d) => {
      if (pair.frozen) return;
      if (!proxy.buffering) return c.write(d);
      // A buffering proxy: each response reaches the browser only once it is complete.
      pair.held = Buffer.concat([pair.held, d]);
      for (let n = completeResponse(pair.held); n > 0; n = completeResponse(pair.held)) {
        c.write(pair.held.subarray(0, n));
        pair.held = pair.held.subarray(n);
      }
    });
    const end = () => {
      pairs.delete(pair);
      c.destroy();
      u.destroy();
    };
    c.on('close', end).on('error', end);
    u.on('close', end).on('error', end);
  };
  let server = net.createServer(onConn);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const proxy = {
    url: `http://127.0.0.1:${port}`,
    kills: 0,
    buffering: false,
    kill() {
      proxy.kills++;
      for (const p of [...pairs]) {
        p.c.destroy();
        p.u.destroy();
      }
    },
    freeze() {
      for (const p of pairs) p.frozen = true;
    },
    async stop() {
      proxy.kill();
      if (server) await new Promise((r) => server.close(r));
      server = null;
    },
    async start() {
      server = net.createServer(onConn);
      await new Promise((r) => server.listen(port, '127.0.0.1', r));
    },
  };
  return proxy;
}

describe('Comet browser client (client/comet.js) in headless Chromium, cross-origin', () => {
  let context;
  let browser;
  let pageServer;
  let setupError;

  before(async () => {
    try {
      browser = await launchChromium({ width: 1000, height: 700 });
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

  /** A fresh test page; its clients are closed and the page is closed when `t` ends. */
  async function newPage(t) {
    if (setupError) throw setupError;
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    t.after(async () => {
      await context.setOffline(false).catch(() => {});
      await page.evaluate(() => window.stopAll?.()).catch(() => {});
      await page.close().catch(() => {});
    });
    await page.goto(`${pageServer.origin}/`);
    await page.waitForFunction(() => window.pageReady === true, null, { timeout: WAIT_MS });
    return { page, pageErrors };
  }

  const startClient = (page, name, opts) => page.evaluate(([n, o]) => window.startClient(n, o), [name, opts]);

  /** Re-reads rec[name] until `pred(rec)`; bounded. */
  async function waitRec(page, name, pred, what, timeoutMs = WAIT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await page.evaluate((n) => window.rec[n], name);
      if (r && pred(r)) return r;
      if (Date.now() > deadline) {
        const brief = r && { ...r, msgs: r.msgs.map((m) => `${m.seq}:${JSON.stringify(m.data)}`), events: r.events.slice(-20) };
        throw new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${what}\n${JSON.stringify(brief)}`);
      }
      await sleep(40);
    }
  }

  /** Exactly `ns` ({n}) once each, in order, with consecutive seqs (native mode). */
  function assertExactly(r, ns, label, { seqs = true } = {}) {
    assert.deepEqual(r.msgs.map((m) => m.data?.n), ns, `${label}: every message once, in order`);
    if (seqs) {
      const s = r.msgs.map((m) => m.seq);
      assert.deepEqual(s, range(s[0], s[0] + s.length - 1), `${label}: consecutive seqs`);
    }
  }

  for (const backend of BACKENDS) {
    describe(`[${backend}]`, () => {
      let comet;
      before(async () => {
        if (setupError) return;
        comet = await startComet({
          backend,
          env: {
            SPIN_VARIABLE_SOCKJS_URL: `${pageServer.origin}/sockjs.min.js`,
            SPIN_VARIABLE_CLIENT_PUBLISH: 'demo-*',
            SPIN_VARIABLE_CLIENT_ACTIONS: '*',
            SPIN_VARIABLE_ACTION_TIMEOUT_SECONDS: '2',
            // Streams end every 3 s: the client must resume across those ends, too.
            SPIN_VARIABLE_MAX_STREAM_SECONDS: '3',
          },
        });
      });
      after(async () => {
        await comet?.stop();
      });

      for (const transport of ['sse', 'stream', 'poll', 'jsonp', 'sockjs']) {
        test(`${transport} forced alone: 25 messages, each once, in order`, TEST_OPTS, async (t) => {
          const { page, pageErrors } = await newPage(t);
          const channel = uniqueChannel('client');
          const sockjs = transport === 'sockjs';
          await startClient(page, 'c', {
            url: sockjs ? `${comet.url}/comet` : comet.url,
            sockjs,
            transports: sockjs ? ['xhr-streaming'] : [transport],
            channels: [channel],
            heartbeatTimeout: 3000,
          });
          await waitRec(page, 'c', (r) => r.opens.length >= 1, 'open');
          // SockJS: a round trip after open proves `subscribe` was applied first.
          if (sockjs) await page.evaluate(() => window.clients.c.request('echo', {}));
          for (const n of range(1, 15)) await comet.publish(channel, { n });
          await comet.publish(range(16, 25).map((n) => ({ channel, data: { n } })));
          await waitRec(page, 'c', (r) => r.msgs.length >= 25, '25 messages');
          await sleep(300); // a late duplicate would show now
          const r = await page.evaluate(() => window.rec.c);
          assertExactly(r, range(1, 25), `${backend}/${transport}`, { seqs: !sockjs });
          assert.ok(r.msgs.every((m) => m.channel === channel));
          assert.equal(r.opens[0].transport, sockjs ? 'xhr-streaming' : transport, 'the forced transport');
          assert.ok(r.opens.every((o) => o.transport === r.opens[0].transport), 'never another transport');
          assert.deepEqual(r.errors.filter((e) => e.fatal), []);
          assert.deepEqual(pageErrors, []);
          if (transport === 'sse' && backend === BACKENDS[0]) {
            await page.screenshot({ path: path.join(SHOTS, 'client-transports.png') });
          }
        });
      }

      const cutTransports = backend === BACKENDS[0] ? ['sse', 'stream', 'poll', 'jsonp'] : ['sse'];
      for (const transport of cutTransports) {
        test(`${transport}: connection kills${['sse', 'stream'].includes(transport) ? ', a silently dead stream' : ''} and offline during a publish stream lose and duplicate nothing`, TEST_OPTS, async (t) => {
          const proxy = await startProxy(comet.url);
          t.after(() => proxy.stop());
          const { page, pageErrors } = await newPage(t);
          const channel = uniqueChannel('client-cut');
          await startClient(page, 'c', {
            url: proxy.url,
            transports: [transport],
            channels: [channel],
            heartbeatTimeout: 2500,
            pollTimeout: 2,
            pollSlack: 1500,
            backoff: { initial: 100, max: 500 },
          });
          await waitRec(page, 'c', (r) => r.opens.length >= 1, 'open');
          const N = 45;
          for (const n of range(1, N)) {
            await comet.publish(channel, { n });
            if (n === 8 || n === 16) proxy.kill(); // server side resets, mid-stream
            const streaming = ['sse', 'stream'].includes(transport);
            if (n === 22 && streaming) proxy.freeze(); // silent: only the watchdog notices
            if (n === 28 && streaming) {
              await waitRec(page, 'c', (r) => r.errors.some((e) => e.code === 'heartbeat_timeout'), 'the heartbeat watchdog', 6000);
            }
            if (n === 36) await context.setOffline(true);
            if (n === 40) await context.setOffline(false);
            await sleep(40);
          }
          await waitRec(page, 'c', (r) => r.msgs.length >= N, `${N} messages`, 20000);
          await sleep(400);
          const r = await page.evaluate(() => window.rec.c);
          assertExactly(r, range(1, N), `${backend}/${transport} across cuts`);
          // Streams reopen after the kills (two kills close together may hit one connection,
          // or the second may land while it is still reconnecting), after the watchdog and
          // after going offline; a poll may sit between requests when a kill lands.
          const minOpens = ['sse', 'stream'].includes(transport) ? 4 : 2;
          assert.ok(r.opens.length >= minOpens, `reconnected after the cuts (${r.opens.length} opens)`);
          if (['sse', 'stream'].includes(transport)) {
            assert.ok(r.errors.some((e) => e.code === 'heartbeat_timeout'), `the watchdog fired: ${JSON.stringify(r.errors)}`);
          }
          assert.ok(r.opens.every((o) => o.transport === transport));
          assert.deepEqual(pageErrors, []);
          t.diagnostic(`${transport}: ${r.opens.length} opens, ${r.duplicates} duplicates dropped, errors ${[...new Set(r.errors.map((e) => e.code))]}`);
        });
      }

      if (backend !== BACKENDS[0]) return;

      test('back-off: exponential with full jitter, capped, reset after a stable connection', TEST_OPTS, async (t) => {
        const proxy = await startProxy(comet.url);
        t.after(() => proxy.stop());
        await proxy.stop(); // refuses connections
        const { page } = await newPage(t);
        const channel = uniqueChannel('client-backoff');
        const common = { url: proxy.url, transports: ['poll'], channels: [channel], backoff: { initial: 100, factor: 2, max: 800 } };
        // random() = 1: each delay is exactly its ceiling.
        await startClient(page, 'fixed', { ...common, random: 0.999999, stableAfter: 300 });
        await startClient(page, 'jitter', { ...common, stableAfter: 300 });
        const r = await waitRec(page, 'fixed', (r) => r.reconnecting.length >= 6, '6 reconnect delays');
        assert.deepEqual(r.reconnecting.slice(0, 6).map((x) => x.delay), [99, 199, 399, 799, 799, 799]);
        assert.deepEqual(r.reconnecting.slice(0, 6).map((x) => x.attempt), [0, 1, 2, 3, 4, 5]);
        // The reconnect really waited that long (connecting events after each scheduled delay).
        for (let i = 0; i < 5; i++) {
          const gap = r.connecting[i + 1].t - r.reconnecting[i].t;
          assert.ok(gap >= r.reconnecting[i].delay - 5 && gap < r.reconnecting[i].delay + 300, `gap ${i}: ${gap} ms for delay ${r.reconnecting[i].delay}`);
        }
        const j = await waitRec(page, 'jitter', (r) => r.reconnecting.length >= 6, '6 jittered delays');
        j.reconnecting.slice(0, 6).forEach((x, i) => {
          assert.equal(x.attempt, i);
          assert.ok(x.delay >= 0 && x.delay < Math.min(800, 100 * 2 ** i), `jittered delay ${i}: ${x.delay}`);
        });
        assert.ok(new Set(j.reconnecting.map((x) => x.delay)).size > 1, 'jitter varies');
        // The pure schedule function agrees.
        assert.deepEqual(
          await page.evaluate(() => [0, 1, 2, 3, 4, 10].map((a) => window.backoffDelay(a, { initial: 100, max: 800 }, () => 0.5))),
          [50, 100, 200, 400, 400, 400],
        );
        // Back up: open; stable for > stableAfter: the next failure starts from attempt 0 again.
        await proxy.start();
        await waitRec(page, 'fixed', (r) => r.opens.length >= 1, 'open after the proxy is back', 5000);
        await sleep(600);
        const before = (await page.evaluate(() => window.rec.fixed)).reconnecting.length;
        await proxy.stop();
        const after = await waitRec(page, 'fixed', (r) => r.reconnecting.length >= before + 2, 'reconnects after the second outage', 5000);
        assert.deepEqual(after.reconnecting.slice(before, before + 2).map((x) => [x.attempt, x.delay]), [[0, 99], [1, 199]]);
      });

      test('request() and send(): answers, error replies, client and server timeouts, in both modes', TEST_OPTS, async (t) => {
        const { page } = await newPage(t);
        const chat = uniqueChannel('demo-chat');
        await startClient(page, 's', { sockjs: true, url: `${comet.url}/comet`, transports: ['xhr-streaming'], channels: [chat] });
        await waitRec(page, 's', (r) => r.opens.length >= 1, 'sockjs open');
        const out = await page.evaluate(async (ch) => {
          const c = window.clients.s;
          const settle = async (p) => {
            const t0 = performance.now();
            try {
              return { ok: await p, ms: performance.now() - t0 };
            } catch (e) {
              return { err: e.code, message: e.message, name: e.name, ms: performance.now() - t0 };
            }
          };
          const sum = await settle(c.request('sum', { numbers: [1, 2, 3] }));
          const fail = await settle(c.request('fail', {}));
          const clientTimeout = await settle(c.request('slow', { ms: 1500 }, { timeout: 300 }));
          const serverTimeout = await settle(c.request('slow', { ms: 5000 }, { timeout: 8000 }));
          const missing = await settle(c.request('no-such-route', {}));
          await c.send(ch, 'hello from the page');
          // Native mode: POST /v1/action/{route} and /v1/send on the same runner.
          const n = new window.Comet({ url: c.options.url.replace(/\/comet$/, ''), channels: [] });
          const nativeRequest = await settle(n.request('sum', { numbers: [1, 2] }));
          const nativeFail = await settle(n.request('fail', {}));
          const nativeTimeout = await settle(n.request('slow', { ms: 1500 }, { timeout: 300 }));
          const nativeSend = await settle(n.send(ch, { from: 'native' }));
          const nativeRefused = await settle(n.send('not-allowed', 'x'));
          const down = new window.Comet({ url: 'http://127.0.0.1:9', channels: [] });
          const unreachable = await settle(down.request('sum', { numbers: [1] }));
          return {
            sum, fail, clientTimeout, serverTimeout, missing,
            nativeRequest, nativeFail, nativeTimeout, nativeSend, nativeRefused, unreachable,
          };
        }, chat);
        assert.deepEqual(out.sum.ok, { sum: 6 });
        assert.match(out.fail.err, /^action_/, JSON.stringify(out.fail));
        assert.equal(out.clientTimeout.err, 'timeout');
        assert.ok(out.clientTimeout.ms >= 290 && out.clientTimeout.ms < 1200, `client timeout after ${out.clientTimeout.ms} ms`);
        assert.equal(out.serverTimeout.err, 'action_timeout', JSON.stringify(out.serverTimeout));
        assert.ok(out.serverTimeout.ms < 5000, `server timeout after ${out.serverTimeout.ms} ms`);
        assert.equal(out.missing.err, 'action_not_found', JSON.stringify(out.missing));
        assert.deepEqual(out.nativeRequest.ok, { sum: 3 }, JSON.stringify(out.nativeRequest));
        assert.equal(out.nativeFail.err, 'action_failed', JSON.stringify(out.nativeFail));
        assert.equal(out.nativeTimeout.err, 'timeout', JSON.stringify(out.nativeTimeout));
        assert.ok(out.nativeTimeout.ms < 1200, `native timeout after ${out.nativeTimeout.ms} ms`);
        assert.equal(out.nativeSend.ok.channel, chat, JSON.stringify(out.nativeSend));
        assert.equal(out.nativeRefused.err, 'publish_forbidden', JSON.stringify(out.nativeRefused));
        assert.equal(out.unreachable.err, 'network', JSON.stringify(out.unreachable));
        // Both publishes (Jii `channel <ch> <data>` and POST /v1/send) came back, in order.
        const r = await waitRec(page, 's', (r) => r.msgs.length >= 2, 'own messages back');
        assert.deepEqual(r.msgs.map((m) => [m.channel, m.data]), [
          [chat, 'hello from the page'],
          [chat, { from: 'native' }],
        ]);
        // A refused publish surfaces as an `error` event.
        await page.evaluate(() => window.clients.s.send('not-allowed', 'x'));
        const r2 = await waitRec(page, 's', (r) => r.errors.length >= 1, 'refusal error');
        assert.ok(r2.errors[0].code, JSON.stringify(r2.errors));
      });

      test('a buffering proxy: streams show nothing, the client falls back to long-poll and loses nothing', TEST_OPTS, async (t) => {
        const { page } = await newPage(t);
        const proxy = await startProxy(comet.url);
        t.after(() => proxy.stop());
        proxy.buffering = true;
        const channel = uniqueChannel('client-buffered');
        await startClient(page, 'b', {
          url: proxy.url,
          transports: ['sse', 'stream', 'poll'],
          channels: [channel],
          firstByteTimeout: 1500,
          pollTimeout: 1,
          backoff: { initial: 100, max: 300 },
        });
        const opened = await waitRec(page, 'b', (r) => r.opens.length >= 1, 'open through the buffering proxy', 15000);
        assert.equal(opened.opens[0].transport, 'poll', JSON.stringify(opened.events));
        const codes = opened.errors.map((e) => e.code);
        assert.ok(codes.includes('no_first_byte'), `buffering detected: ${JSON.stringify(codes)}`);
        for (const n of range(1, 10)) await comet.publish(channel, { n });
        const r = await waitRec(page, 'b', (r) => r.msgs.length >= 10, '10 messages by long-poll', 15000);
        assertExactly(r, range(1, 10), 'through a buffering proxy');
        assert.equal(await page.evaluate(() => window.clients.b.transport), 'poll');
      });

      test('reset: messages dropped by retention while offline are surfaced, then newer ones follow', TEST_OPTS, async (t) => {
        const small = await startComet({ backend, env: { SPIN_VARIABLE_RETENTION_COUNT: '5' } });
        const { page } = await newPage(t);
        t.after(async () => {
          await page.evaluate(() => window.stopAll?.()).catch(() => {});
          await page.close().catch(() => {});
          await small.stop();
        });
        const channel = uniqueChannel('client-reset');
        await startClient(page, 'c', { url: small.url, transports: ['sse'], channels: [channel], heartbeatTimeout: 2500, backoff: { initial: 100, max: 400 } });
        await waitRec(page, 'c', (r) => r.opens.length >= 1, 'open');
        for (const n of range(1, 3)) await small.publish(channel, { n });
        await waitRec(page, 'c', (r) => r.msgs.length >= 3, '3 messages');
        await context.setOffline(true);
        await waitRec(page, 'c', (r) => r.closes.length >= 1, 'the client noticed offline', 5000);
        await small.publish(range(4, 23).map((n) => ({ channel, data: { n } })));
        await context.setOffline(false);
        await waitRec(page, 'c', (r) => r.resets.length >= 1 && r.msgs.some((m) => m.data.n === 23), 'reset, then the retained messages');
        await small.publish(channel, { n: 24 });
        const r = await waitRec(page, 'c', (r) => r.msgs.some((m) => m.data.n === 24), 'message 24');
        await sleep(200);
        const final = await page.evaluate(() => window.rec.c);
        assert.equal(final.resets.length, 1);
        assert.equal(final.resets[0].channel, channel);
        assert.equal(final.resets[0].seq, 19, 'first available seq (retention 5 of 23)');
        assert.deepEqual(
          final.events.filter((e) => !e.startsWith('open')),
          [
            ...range(1, 3).map((n) => `msg ${channel} {"n":${n}}`),
            `reset ${channel} 19`,
            ...range(19, 24).map((n) => `msg ${channel} {"n":${n}}`),
          ],
        );
        assert.ok(r.opens.length >= 2);
      });

      test('demo page (client/demo/) from another origin (&url=): a read-only channel, native and SockJS mode', TEST_OPTS, async (t) => {
        if (setupError) throw setupError;
        const channel = uniqueChannel('demo-ticker');
        // The page server serves client/ from disk; &url= points the page at the runner. The
        // chat as the runner serves it is covered by demo.test.mjs.
        const base = `${pageServer.origin}/client/demo/?channel=${encodeURIComponent(channel)}&url=${encodeURIComponent(comet.url)}`;
        const open = async (query) => {
          const page = await context.newPage();
          const pageErrors = [];
          page.on('pageerror', (e) => pageErrors.push(String(e)));
          t.after(async () => {
            await page.evaluate(() => window.comet?.close()).catch(() => {});
            await page.close().catch(() => {});
          });
          await page.goto(base + query);
          await page.waitForFunction(() => window.comet?.state === 'open', null, { timeout: WAIT_MS });
          return { page, pageErrors };
        };
        const texts = (page) => page.$$eval('#log li.msg .text', (els) => els.map((e) => e.textContent));
        const { page, pageErrors } = await open('');
        // SockJS mode loads sockjs-client from the server's sockjs_url (this page server).
        const sock = await open('&mode=sockjs&transports=xhr-streaming');
        await sock.page.evaluate(() => window.comet.request('echo', {})); // its subscribe is applied
        const ticks = ['EURUSD 1.0842 ▲', 'BTC 97,120 ▼', 'hello from Comet <b>not bold</b>'];
        for (const text of ticks) await comet.publish(channel, { text });
        for (const p of [page, sock.page]) {
          await p.waitForFunction(() => document.querySelectorAll('#log li.msg').length >= 3, null, { timeout: WAIT_MS });
        }
        await sleep(300); // the page's history request races these live messages: a doubled row would show now
        assert.deepEqual(await texts(page), ticks, 'oldest first, each once, as text (no HTML injection)');
        assert.deepEqual(await texts(sock.page), ticks, 'SockJS mode: each once, in order');
        for (const p of [page, sock.page]) {
          assert.equal(await p.$$eval('#log b', (els) => els.length), 0);
          assert.equal(await p.textContent('#state'), 'open');
        }
        assert.equal(await page.textContent('#transport'), 'sse');
        assert.equal(await sock.page.textContent('#transport'), 'xhr-streaming');
        assert.deepEqual([...pageErrors, ...sock.pageErrors], []);
        await page.screenshot({ path: path.join(SHOTS, 'client-demo.png'), fullPage: true });
      });
    });
  }
});
