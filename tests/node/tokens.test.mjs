// The client's getToken and per-task batching, run in Node >= 20 (fetch streaming, no DOM)
// against a real `comet up` with `token_secret` set:
// - short-lived tokens (valid ~3 s) on `sse`, `stream` and `poll`: each expiry ends the
//   connection, the resume is refused with token_expired, getToken is asked again and the
//   client resumes from its cursor — every message once, in order, for the private channel
//   and a public one in the same request;
// - a fixed expired token stays fatal; a getToken that only answers stale tokens is asked
//   three times, then the error is fatal (no loop);
// - a channel made private by `private_channels` (no `private-` prefix): the server's
//   token_required teaches the client to ask getToken for it;
// - getToken throwing: `token_unavailable`, retried with back-off;
// - subscribe() ×3 in one task opens one request (counted through options.fetch); separate
//   tasks open one each;
// - SockJS mode (npm sockjs-client in Node): the server ends a subscription with
//   `error … token_expired`, the client subscribes again with a fresh token.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import SockJS from 'sockjs-client';

import { Comet } from '../../client/comet.js';
import { BACKENDS, sleep, startComet, uniqueChannel, waitFor } from './support/server.mjs';

const SECRET = 'node-e2e-token-secret';
const TEST_OPTS = { timeout: 60000 };
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const nowSecs = () => Math.floor(Date.now() / 1000);

/** An HS256 subscribe token (README "Private channels") for `channels`, expiring at `exp`. */
export function mintToken(channels, exp, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'node-e2e', channels, exp })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/**
 * The server accepts a token until `exp` + 30 s (clock leeway) and ends streams then, so
 * `exp` 27 s in the past gives a token that lives about 3 s.
 */
const shortLived = (channels) => mintToken(channels, nowSecs() - 27);

/** Everything a client reports, for assertions and failure messages. */
function record(c) {
  const r = { msgs: [], errors: [], opens: [], tokens: [], states: [] };
  c.on('channel', (e) => r.msgs.push({ channel: e.channel, n: e.data?.n, seq: e.seq }));
  c.on('error', (e) => r.errors.push({ code: e.code, fatal: !!e.fatal, message: e.message }));
  c.on('open', (e) => r.opens.push(e.transport));
  c.on('token', (e) => r.tokens.push(e));
  c.on('state', (s) => r.states.push(s));
  r.brief = () => JSON.stringify({ ...r, msgs: r.msgs.map((m) => `${m.channel.slice(0, 12)}:${m.n}`) });
  return r;
}

const backend = BACKENDS[0];
describe(`client getToken and batching in Node [${backend}]`, () => {
  let comet;
  before(async () => {
    comet = await startComet({
      backend,
      env: {
        SPIN_VARIABLE_TOKEN_SECRET: SECRET,
        SPIN_VARIABLE_PRIVATE_CHANNELS: 'secretive-*',
        SPIN_VARIABLE_CLIENT_ACTIONS: 'echo',
      },
    });
  });
  after(async () => {
    await comet?.stop();
  });

  for (const transport of ['sse', 'stream', 'poll']) {
    test(`${transport}: tokens living ~3 s are refreshed on expiry; nothing lost or duplicated`, TEST_OPTS, async (t) => {
      const priv = uniqueChannel('private-tok');
      const pub = uniqueChannel('pub-tok');
      const asked = [];
      const c = new Comet({
        url: comet.url,
        transports: [transport],
        heartbeatTimeout: 3000,
        pollTimeout: 1,
        backoff: { initial: 100, max: 300 },
        getToken: async (channels, info) => {
          asked.push({ channels, reason: info.reason, mode: info.mode });
          await sleep(20); // a real backend round trip is asynchronous
          return shortLived(channels);
        },
      });
      t.after(() => c.close());
      const r = record(c);
      c.subscribe(priv);
      c.subscribe(pub);
      c.open();
      await waitFor(() => r.opens.length >= 1, { describe: r.brief });
      // ~8 s of traffic: at least two token lifetimes.
      const N = 36;
      for (const n of range(1, N)) {
        await comet.publish(n % 2 ? priv : pub, { n });
        await sleep(220);
      }
      await waitFor(() => r.msgs.length >= N, { timeoutMs: 15000, describe: r.brief });
      await sleep(300); // a late duplicate would show now
      const odd = range(1, N).filter((n) => n % 2);
      const even = range(1, N).filter((n) => n % 2 === 0);
      assert.deepEqual(r.msgs.filter((m) => m.channel === priv).map((m) => m.n), odd, `private channel: ${r.brief()}`);
      assert.deepEqual(r.msgs.filter((m) => m.channel === pub).map((m) => m.n), even, `public channel: ${r.brief()}`);
      assert.equal(r.msgs.length, N, 'nothing else, nothing twice');
      assert.ok(asked.length >= 3, `getToken asked at least 3 times in ~8 s: ${JSON.stringify(asked)}`);
      assert.equal(asked[0].reason, 'subscribe');
      assert.ok(asked.slice(1).some((a) => a.reason === 'token_expired'), `refreshed on token_expired: ${JSON.stringify(asked)}`);
      // One request, one token: getToken is asked for the channels that need one, together.
      for (const a of asked) assert.deepEqual(a.channels, [priv]);
      assert.ok(asked.every((a) => a.mode === 'native'));
      assert.deepEqual(r.errors.filter((e) => e.fatal), [], r.brief());
      assert.ok(r.errors.some((e) => e.code === 'token_expired' && !e.fatal), `token_expired reported, not fatal: ${r.brief()}`);
      assert.ok(r.opens.length >= 3, `reconnected with fresh tokens: ${r.opens.length} opens`);
      assert.equal(c.state, 'open');
      t.diagnostic(`${transport}: ${asked.length} getToken calls, ${r.opens.length} opens`);
    });
  }

  test('without getToken an expired token is fatal; a getToken answering stale tokens is asked 3 times, then fatal', TEST_OPTS, async (t) => {
    const priv = uniqueChannel('private-stale');
    const fixed = new Comet({ url: comet.url, transports: ['stream'], channels: [priv], token: mintToken([priv], nowSecs() - 100) });
    const rf = record(fixed);
    t.after(() => fixed.close());
    fixed.open();
    await waitFor(() => rf.errors.some((e) => e.fatal), { describe: rf.brief });
    assert.equal(rf.errors.find((e) => e.fatal).code, 'token_expired');
    assert.equal(fixed.state, 'closed');

    let calls = 0;
    const stale = new Comet({
      url: comet.url,
      transports: ['stream'],
      channels: [priv],
      getToken: (channels) => {
        calls++;
        return mintToken(channels, nowSecs() - 100);
      },
    });
    const rs = record(stale);
    t.after(() => stale.close());
    stale.open();
    await waitFor(() => rs.errors.some((e) => e.fatal), { describe: rs.brief });
    await sleep(500); // no further attempts after the fatal error
    assert.equal(calls, 3, `the first token and two refreshes: ${rs.brief()}`);
    assert.deepEqual(rs.errors.map((e) => [e.code, e.fatal]), [['token_expired', false], ['token_expired', false], ['token_expired', true]]);
    assert.equal(stale.state, 'closed');
    assert.equal(rs.opens.length, 0);
  });

  test('a channel private by private_channels: token_required teaches the client to ask getToken for it', TEST_OPTS, async (t) => {
    const secretive = uniqueChannel('secretive-x'); // matches `secretive-*`, no `private-` prefix
    const asked = [];
    const c = new Comet({
      url: comet.url,
      transports: ['sse'],
      channels: [secretive],
      getToken: (channels, info) => {
        asked.push({ channels, reason: info.reason });
        return mintToken(channels, nowSecs() + 600);
      },
    });
    const r = record(c);
    t.after(() => c.close());
    c.open();
    await waitFor(() => r.opens.length >= 1, { describe: r.brief });
    assert.deepEqual(asked, [{ channels: [secretive], reason: 'token_required' }]);
    assert.deepEqual(r.errors.map((e) => [e.code, e.fatal]), [['token_required', false]]);
    for (const n of range(1, 5)) await comet.publish(secretive, { n });
    await waitFor(() => r.msgs.length >= 5, { describe: r.brief });
    assert.deepEqual(r.msgs.map((m) => m.n), range(1, 5));
  });

  test('getToken throwing: token_unavailable, retried with back-off until it answers', TEST_OPTS, async (t) => {
    const priv = uniqueChannel('private-flaky');
    let calls = 0;
    const c = new Comet({
      url: comet.url,
      transports: ['stream'],
      channels: [priv],
      backoff: { initial: 100, max: 200 },
      getToken: async (channels) => {
        if (++calls <= 2) throw new Error('auth backend down');
        return mintToken(channels, nowSecs() + 600);
      },
    });
    const r = record(c);
    t.after(() => c.close());
    c.open();
    await waitFor(() => r.opens.length >= 1, { describe: r.brief });
    assert.equal(calls, 3);
    assert.deepEqual(r.errors.map((e) => e.code), ['token_unavailable', 'token_unavailable']);
    assert.match(r.errors[0].message, /auth backend down/);
    await comet.publish(priv, { n: 1 });
    await waitFor(() => r.msgs.length >= 1, { describe: r.brief });
    assert.deepEqual(r.msgs.map((m) => m.n), [1]);
  });

  test('subscribe() three times in one task opens one request; separate tasks open one each', TEST_OPTS, async (t) => {
    const seen = [];
    const countingFetch = (url, init) => {
      seen.push(new URL(url));
      return fetch(url, init);
    };
    const subs = () => seen.filter((u) => u.pathname === '/v1/stream');
    const [a, b, c3, d, e] = ['a', 'b', 'c', 'd', 'e'].map((x) => uniqueChannel(`batch-${x}`));
    const c = new Comet({ url: comet.url, transports: ['stream'], fetch: countingFetch });
    const r = record(c);
    t.after(() => c.close());
    c.open();
    c.subscribe(a);
    c.subscribe(b);
    c.subscribe(c3);
    await waitFor(() => r.opens.length >= 1, { describe: r.brief });
    await sleep(200);
    assert.equal(subs().length, 1, `one request for a, b, c: ${subs().map(String)}`);
    assert.deepEqual(subs()[0].searchParams.getAll('channel'), [a, b, c3]);
    await comet.publish([a, b, c3].map((channel, i) => ({ channel, data: { n: i + 1 } })));
    await waitFor(() => r.msgs.length >= 3, { describe: r.brief });
    assert.deepEqual(r.msgs.map((m) => [m.channel, m.n]), [[a, 1], [b, 2], [c3, 3]]);

    // Unsubscribe + subscribe in one task: one more request, with the final set.
    c.unsubscribe(a);
    c.subscribe(d);
    await waitFor(() => r.opens.length >= 2, { describe: r.brief });
    await sleep(200);
    assert.equal(subs().length, 2, `one request for the change: ${subs().map(String)}`);
    assert.deepEqual(subs()[1].searchParams.getAll('channel'), [b, c3, d]);

    // The counter sees separate tasks: two subscribes a task apart are two requests.
    c.subscribe(e);
    await sleep(0);
    c.unsubscribe(e);
    await waitFor(() => subs().length >= 4, { describe: () => subs().map(String).join('\n') });
    await sleep(200);
    assert.equal(subs().length, 4);
    await comet.publish([{ channel: a, data: { n: 4 } }, { channel: d, data: { n: 5 } }]);
    await waitFor(() => r.msgs.length >= 4, { describe: r.brief });
    await sleep(300);
    assert.deepEqual(r.msgs.slice(3).map((m) => [m.channel, m.n]), [[d, 5]], 'a is no longer subscribed');
  });

  test('SockJS mode (npm sockjs-client in Node): a subscription ended by token expiry is renewed with a fresh token', TEST_OPTS, async (t) => {
    const priv = uniqueChannel('private-sock');
    const asked = [];
    const c = Comet.sockjs({
      url: `${comet.url}/comet`,
      SockJS,
      transports: ['xhr-streaming'],
      channels: [priv],
      getToken: (channels, info) => {
        asked.push({ channels, reason: info.reason, mode: info.mode });
        return shortLived(channels);
      },
    });
    const r = record(c);
    t.after(() => c.close());
    c.open();
    await waitFor(() => r.opens.length >= 1, { describe: r.brief });
    // A round trip after the subscribe was sent: it is applied.
    await waitFor(() => asked.length >= 1, { describe: r.brief });
    await c.request('echo', {});
    for (const n of range(1, 3)) await comet.publish(priv, { n });
    await waitFor(() => r.msgs.length >= 3, { describe: r.brief });
    // ~3 s later the server ends the subscription; the client asks for a token and subscribes again.
    await waitFor(() => asked.length >= 2, { timeoutMs: 10000, describe: r.brief });
    await sleep(100);
    await c.request('echo', {});
    for (const n of range(4, 8)) await comet.publish(priv, { n });
    await waitFor(() => r.msgs.length >= 8, { describe: r.brief });
    await sleep(200);
    assert.deepEqual(r.msgs.map((m) => m.n), range(1, 8), r.brief());
    assert.deepEqual(asked[0], { channels: [priv], reason: 'subscribe', mode: 'sockjs' });
    assert.deepEqual(asked[1], { channels: [priv], reason: 'token_expired', mode: 'sockjs' });
    assert.ok(r.msgs.every((m) => m.channel === priv));
    assert.ok(r.errors.some((e) => e.code === 'token_expired' && !e.fatal), r.brief());
    assert.equal(r.opens.length, 1, 'the session stayed open');
  });
});
