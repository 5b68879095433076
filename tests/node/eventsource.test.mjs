// The npm `eventsource` client (WHATWG EventSource for Node) against a real `comet up`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { BACKENDS, startComet, uniqueChannel, waitFor } from './support/server.mjs';
import { recordEventSource } from './support/sse.mjs';

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Asserts the messages are exactly `ns` (data `{n}`), with consecutive seqs in one epoch. */
function assertExactly(rec, channel, ns, label) {
  assert.deepEqual(
    rec.data().map((d) => d.n),
    ns,
    `${label}: received data in order, nothing lost or duplicated`,
  );
  const seqs = rec.messages.map((m) => m.envelope.seq);
  for (let i = 1; i < seqs.length; i++) {
    assert.equal(seqs[i], seqs[i - 1] + 1, `${label}: seqs consecutive (${seqs.join(',')})`);
  }
  for (const m of rec.messages) {
    assert.equal(m.envelope.channel, channel);
    assert.equal(typeof m.envelope.epoch, 'string');
    assert.ok(m.envelope.epoch.length > 0);
    assert.equal(typeof m.envelope.time, 'number');
    assert.match(m.id, /^[A-Za-z0-9_-]+$/, `${label}: event id is a URL-safe cursor`);
  }
  assert.equal(new Set(rec.messages.map((m) => m.id)).size, rec.messages.length, 'ids differ');
}

for (const backend of BACKENDS) {
  describe(`npm eventsource client [${backend}]`, () => {
    let comet;
    before(async () => {
      comet = await startComet({ backend });
    });
    after(async () => {
      await comet?.stop();
    });

    test('receives messages published over HTTP, in order', async (t) => {
      const channel = uniqueChannel('es-order');
      const rec = recordEventSource(`${comet.url}/v1/sse?channel=${encodeURIComponent(channel)}`);
      t.after(() => rec.close());
      // Comet's `open` event says the subscription is positioned ("now"): publish after it.
      await waitFor(() => rec.opens.length === 1, { describe: () => 'no open event' });
      assert.match(rec.opens[0].id, /^[A-Za-z0-9_-]+$/);
      assert.equal(rec.opens[0].data.cursor, rec.opens[0].id);

      // Singles and a batch, interleaved.
      for (const n of range(1, 10)) await comet.publish(channel, { n });
      await comet.publish(range(11, 20).map((n) => ({ channel, data: { n } })));
      for (const n of range(21, 25)) await comet.publish(channel, { n });

      await waitFor(() => rec.messages.length >= 25, {
        describe: () => `got ${rec.messages.length}/25: ${JSON.stringify(rec.data())}`,
      });
      assertExactly(rec, channel, range(1, 25), 'live');
      assert.deepEqual(rec.resets, []);
      assert.equal(rec.es.readyState, rec.es.OPEN);
    });

    test('resumes by Last-Event-ID after close: nothing lost or duplicated', async (t) => {
      const channel = uniqueChannel('es-resume');
      const sseUrl = `${comet.url}/v1/sse?channel=${encodeURIComponent(channel)}`;

      const first = recordEventSource(sseUrl);
      t.after(() => first.close());
      await waitFor(() => first.opens.length === 1, { describe: () => 'first: no open' });
      for (const n of range(1, 10)) await comet.publish(channel, { n });
      await waitFor(() => first.messages.length >= 10, {
        describe: () => `first got ${first.messages.length}/10`,
      });
      const lastId = first.lastId();
      first.close();

      // Published while nobody listens.
      for (const n of range(11, 20)) await comet.publish(channel, { n });
      await comet.publish(range(21, 25).map((n) => ({ channel, data: { n } })));

      const second = recordEventSource(sseUrl, { lastEventId: lastId });
      t.after(() => second.close());
      await waitFor(() => second.opens.length === 1, { describe: () => 'second: no open' });
      assert.equal(second.requests[0].lastEventId, lastId, 'Last-Event-ID was sent');
      // The backlog comes before `open`.
      assert.deepEqual(
        second.data().map((d) => d.n),
        range(11, 25),
        'the gap is replayed before open',
      );
      // Then live messages continue on the same stream.
      for (const n of range(26, 30)) await comet.publish(channel, { n });
      await waitFor(() => second.messages.length >= 20, {
        describe: () => `second got ${second.messages.length}/20: ${JSON.stringify(second.data())}`,
      });
      assertExactly(first, channel, range(1, 10), 'before close');
      assertExactly(second, channel, range(11, 30), 'after resume');
      assert.equal(
        second.messages[0].envelope.seq,
        first.messages.at(-1).envelope.seq + 1,
        'seq continues across the gap',
      );
      assert.equal(second.messages[0].envelope.epoch, first.messages[0].envelope.epoch);
      assert.deepEqual(second.resets, []);
    });

    test('resumes by ?lastEventId= query as well', async (t) => {
      const channel = uniqueChannel('es-query');
      const sseUrl = `${comet.url}/v1/sse?channel=${encodeURIComponent(channel)}`;
      const first = recordEventSource(sseUrl);
      t.after(() => first.close());
      await waitFor(() => first.opens.length === 1);
      for (const n of range(1, 3)) await comet.publish(channel, { n });
      await waitFor(() => first.messages.length >= 3);
      first.close();
      for (const n of range(4, 6)) await comet.publish(channel, { n });

      const second = recordEventSource(
        `${sseUrl}&lastEventId=${encodeURIComponent(first.lastId())}`,
      );
      t.after(() => second.close());
      await waitFor(() => second.messages.length >= 3, {
        describe: () => `got ${JSON.stringify(second.data())}`,
      });
      assertExactly(second, channel, range(4, 6), 'query resume');
    });

    test('an expired cursor gets an explicit reset event, not a silent gap', async (t) => {
      // A second runner with tiny retention, on the same backend.
      const small = await startComet({
        backend,
        env: { SPIN_VARIABLE_RETENTION_COUNT: '5' },
      });
      // Close the clients before stopping the runner (held streams would delay its drain).
      const clients = [];
      t.after(async () => {
        for (const c of clients) c.close();
        await small.stop();
      });
      const channel = uniqueChannel('es-reset');
      const sseUrl = `${small.url}/v1/sse?channel=${encodeURIComponent(channel)}`;
      const first = recordEventSource(sseUrl);
      clients.push(first);
      await waitFor(() => first.opens.length === 1);
      await small.publish(channel, { n: 1 });
      await waitFor(() => first.messages.length === 1);
      first.close();
      // 19 more: message 2 falls out of the last-5 retention window.
      await small.publish(range(2, 20).map((n) => ({ channel, data: { n } })));

      const second = recordEventSource(sseUrl, { lastEventId: first.lastId() });
      clients.push(second);
      await waitFor(() => second.opens.length === 1, { describe: () => 'no open' });
      assert.equal(second.resets.length, 1, `one reset: ${JSON.stringify(second.resets)}`);
      const reset = second.resets[0].data;
      assert.equal(reset.type, 'reset');
      assert.equal(reset.channel, channel);
      assert.equal(reset.seq, second.messages[0]?.envelope.seq, 'reset names the first seq sent');
      assert.deepEqual(
        second.data().map((d) => d.n),
        range(16, 20),
        'after the reset: exactly the retained messages',
      );
    });

    test('reconnects by itself when the server ends the stream (max_stream_seconds)', async (t) => {
      // Streams end cleanly every 2 s (as on platforms that cap a request's life); the
      // package reconnects after the `retry:` hint with its own Last-Event-ID.
      const capped = await startComet({
        backend,
        env: { SPIN_VARIABLE_MAX_STREAM_SECONDS: '2' },
      });
      const channel = uniqueChannel('es-capped');
      const rec = recordEventSource(`${capped.url}/v1/sse?channel=${encodeURIComponent(channel)}`);
      t.after(async () => {
        rec.close();
        await capped.stop();
      });
      await waitFor(() => rec.opens.length === 1);

      const total = 40;
      for (const n of range(1, total)) {
        await capped.publish(channel, { n });
        await new Promise((r) => setTimeout(r, 125)); // ~5 s of publishing
      }
      await waitFor(() => rec.messages.length >= total, {
        timeoutMs: 15000,
        describe: () => `got ${rec.messages.length}/${total}: ${JSON.stringify(rec.data())}`,
      });
      // Let a straggler duplicate show up, if any.
      await new Promise((r) => setTimeout(r, 300));
      assertExactly(rec, channel, range(1, total), 'across server-ended streams');
      assert.ok(rec.requests.length >= 2, `reconnected (${rec.requests.length} requests)`);
      for (const r of rec.requests.slice(1)) {
        assert.ok(r.lastEventId, 'each reconnect sent Last-Event-ID');
      }
    });
  });
}
