// JSONP long-poll (`/v1/poll?callback=`) evaluated as a browser would run a <script>: the body
// is executed with node:vm in a fresh context that defines only the callback.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import vm from 'node:vm';

import { BACKENDS, sleep, startComet, uniqueChannel } from './support/server.mjs';

/** Runs a JSONP body in a sandbox; returns every call made to the callback. */
function runJsonp(body, callbackPath = 'cb') {
  const calls = [];
  const fn = (...args) => {
    calls.push(args);
  };
  // Build `{a: {b: fn}}` for a dotted name such as `a.b`.
  const parts = callbackPath.split('.');
  const context = {};
  let obj = context;
  for (const p of parts.slice(0, -1)) obj = obj[p] = {};
  obj[parts.at(-1)] = fn;
  vm.runInNewContext(body, vm.createContext(context), { timeout: 1000 });
  // The argument was built inside the sandbox: round-trip it to compare with deepEqual.
  return calls.map((args) => JSON.parse(JSON.stringify(args)));
}

for (const backend of BACKENDS) {
  describe(`JSONP long-poll [${backend}]`, () => {
    let comet;
    before(async () => {
      comet = await startComet({ backend });
    });
    after(async () => {
      await comet?.stop();
    });

    const pollUrl = (channel, params) =>
      `${comet.url}/v1/poll?${new URLSearchParams({ channel, ...params })}`;

    test('calls the callback once with the messages, in order', async () => {
      const channel = uniqueChannel('jsonp');
      const payloads = [
        { n: 1 },
        'two',
        3,
        // Things that must survive being inside a script: HTML, quotes, line separators.
        { n: 4, html: '</script><script>alert(1)</script>', q: '"\'\\', ls: 'a\u2028b\u2029c' },
        [5, null, true],
      ];
      for (const data of payloads) await comet.publish(channel, data);

      const res = await fetch(pollUrl(channel, { from: 'start', timeout: '0', callback: 'cb' }));
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^application\/javascript/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const body = await res.text();
      assert.ok(body.startsWith('/**/cb('), `body starts with /**/cb( : ${body.slice(0, 40)}`);

      const calls = runJsonp(body, 'cb');
      assert.equal(calls.length, 1, 'cb called exactly once');
      assert.equal(calls[0].length, 1, 'with one argument');
      const { messages, cursor } = calls[0][0];
      assert.deepEqual(
        messages.map((m) => m.data),
        payloads,
      );
      assert.deepEqual(
        messages.map((m) => m.seq),
        [1, 2, 3, 4, 5],
      );
      for (const m of messages) assert.equal(m.channel, channel);
      assert.match(cursor, /^[A-Za-z0-9_-]+$/);

      // The JSON and JSONP forms agree.
      const plain = await (
        await fetch(pollUrl(channel, { from: 'start', timeout: '0' }))
      ).json();
      assert.deepEqual(plain, calls[0][0]);

      // Resuming from the cursor: nothing old, then the next message.
      const empty = runJsonp(
        await (await fetch(pollUrl(channel, { cursor, timeout: '0', callback: 'cb' }))).text(),
      );
      assert.deepEqual(empty[0][0].messages, []);
      assert.equal(empty[0][0].cursor, cursor, 'an empty answer keeps the cursor');
      await comet.publish(channel, { n: 6 });
      const next = runJsonp(
        await (await fetch(pollUrl(channel, { cursor, timeout: '0', callback: 'cb' }))).text(),
      );
      assert.deepEqual(
        next[0][0].messages.map((m) => [m.seq, m.data]),
        [[6, { n: 6 }]],
      );
    });

    test('a held JSONP poll returns when a message is published', async () => {
      const channel = uniqueChannel('jsonp-held');
      const first = runJsonp(
        await (await fetch(pollUrl(channel, { timeout: '0', callback: 'cb' }))).text(),
      );
      const cursor = first[0][0].cursor;
      const started = Date.now();
      const pending = fetch(pollUrl(channel, { cursor, timeout: '10', callback: 'cb' })).then(
        (r) => r.text(),
      );
      await sleep(300);
      await comet.publish(channel, { hello: 'held' });
      const calls = runJsonp(await pending);
      const elapsed = Date.now() - started;
      assert.equal(calls.length, 1);
      assert.deepEqual(
        calls[0][0].messages.map((m) => m.data),
        [{ hello: 'held' }],
      );
      assert.ok(elapsed < 5000, `returned on publish, not on timeout (${elapsed} ms)`);
    });

    test('dotted and $ callback names work', async () => {
      const channel = uniqueChannel('jsonp-dotted');
      await comet.publish(channel, { n: 1 });
      for (const name of ['jQuery123_456.cb', '$', '_a.b.c$']) {
        const res = await fetch(pollUrl(channel, { from: 'start', timeout: '0', callback: name }));
        assert.equal(res.status, 200, name);
        const calls = runJsonp(await res.text(), name);
        assert.equal(calls.length, 1, name);
        assert.deepEqual(
          calls[0][0].messages.map((m) => m.data),
          [{ n: 1 }],
          name,
        );
      }
    });

    test('a bad callback name gets 400 JSON and is not reflected', async () => {
      const channel = uniqueChannel('jsonp-bad');
      const bad = [
        'alert(1)',
        'cb;alert(1)//',
        '<script>x</script>',
        '1abc',
        'a-b',
        'a b',
        'x'.repeat(65),
        'cb\u2028',
        '',
      ];
      for (const name of bad) {
        const res = await fetch(pollUrl(channel, { timeout: '0', callback: name }));
        const body = await res.text();
        assert.equal(res.status, 400, `${JSON.stringify(name)} → ${res.status} ${body}`);
        assert.match(res.headers.get('content-type'), /^application\/json/, JSON.stringify(name));
        const err = JSON.parse(body);
        assert.equal(err.error?.code, 'invalid_callback', body);
        assert.equal(typeof err.error.message, 'string');
        if (name.length > 3) {
          assert.ok(!body.includes(name), `${JSON.stringify(name)} is not echoed: ${body}`);
        }
        assert.ok(!body.includes('<script'), 'no markup in the error');
      }
    });
  });
}
