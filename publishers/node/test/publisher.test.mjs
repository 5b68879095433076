// comet-publisher against a real `comet up` (started by tests/e2e/publishers.rs, which passes
// COMET_URL, COMET_PUBLISH_KEY, COMET_TOKEN_SECRET and COMET_OPENAPI_JSON). Every body the
// helper returns is checked against openapi.yaml.

import test from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Publisher, CometError, mintToken } from '../comet-publisher.js';
import { env, assertDocumented, assertErrorCode, faultProxy } from '../testing/support.mjs';

const url = env('COMET_URL');
const publishKey = env('COMET_PUBLISH_KEY');
const secret = env('COMET_TOKEN_SECRET');
const comet = new Publisher({ url, publishKey });
const fresh = (prefix = 'node') => `${prefix}-${randomUUID()}`;

/** History of `channel`, checked against the schema. */
async function history(channel, options) {
  const body = await comet.history(channel, options);
  assertDocumented('get', '/v1/history/{channel}', 200, body);
  return body;
}

/** Runs `fn`, expecting a CometError with `code` and `status` (both checked against openapi.yaml). */
async function rejectsWith(fn, code, status) {
  const error = await fn().then(() => assert.fail(`expected ${code}`), (e) => e);
  assert.ok(error instanceof CometError, `not a CometError: ${error}`);
  assert.equal(error.code, code, error.message);
  assert.equal(error.status, status);
  assertErrorCode(code, status);
  return error;
}

test('publish one → history shows it with its seq', async () => {
  const channel = fresh();
  // README: publish
  const { seq, duplicate } = await comet.publish(channel, { text: 'hello' });
  assert.equal(seq, 1);
  assert.equal(duplicate, false);
  const { messages } = await history(channel, { since: 0, limit: 100 });
  assert.equal(messages.length, 1);
  assert.deepEqual(messages[0].data, { text: 'hello' });
  assert.equal(messages[0].seq, seq);
});

test('a batch of N → N messages in order', async () => {
  const channel = fresh();
  const n = 7;
  const batch = Array.from({ length: n }, (_, i) => ({ channel, data: { i } }));
  const body = await comet.publishBatch(batch);
  assertDocumented('post', '/v1/publish', 200, body);
  assert.equal(body.results.length, n);
  assert.deepEqual(body.results.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7]);
  const { messages } = await history(channel);
  assert.equal(messages.length, n);
  assert.deepEqual(messages.map((m) => m.data.i), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(messages.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7]);
  const since = await history(channel, { since: 5, limit: 1 });
  assert.deepEqual(since.messages.map((m) => m.seq), [6]);
});

test('the same id twice stores one message', async () => {
  const channel = fresh();
  const first = await comet.publish(channel, 'once', { id: 'order-17' });
  const again = await comet.publish(channel, 'once', { id: 'order-17' });
  assertDocumented('post', '/v1/publish', 200, again);
  assert.equal(first.duplicate, false);
  assert.equal(again.duplicate, true);
  assert.equal(again.seq, first.seq);
  const { messages } = await history(channel);
  assert.equal(messages.length, 1);
});

test('429 with Retry-After: 1 is waited out and retried; delivered once', async () => {
  const channel = fresh();
  const proxy = await faultProxy(url, [
    { status: 429, headers: { 'retry-after': '1' }, body: { error: { code: 'rate_limited', message: 'injected' } } },
    'forward',
  ]);
  try {
    const started = Date.now();
    const result = await new Publisher({ url: proxy.url, publishKey, minDelayMs: 10 }).publish(channel, 'x');
    assertDocumented('post', '/v1/publish', 200, result);
    assert.ok(Date.now() - started >= 950, `retried after ${Date.now() - started} ms, before Retry-After`);
    assert.equal(proxy.requests, 2);
    assert.equal(result.duplicate, false);
  } finally {
    await proxy.close();
  }
  assert.equal((await history(channel)).messages.length, 1);
});

test('a lost answer (stored, then 503) is retried with the same id: duplicate, stored once', async () => {
  const channel = fresh();
  const proxy = await faultProxy(url, [{ forwardThen: 503 }, 'forward']);
  try {
    const result = await new Publisher({ url: proxy.url, publishKey, minDelayMs: 10 }).publish(channel, 'y');
    assert.equal(proxy.requests, 2);
    assert.equal(result.duplicate, true, 'the retry reached the server with the first attempt\'s id');
    assert.equal(result.seq, 1);
  } finally {
    await proxy.close();
  }
  assert.equal((await history(channel)).messages.length, 1);
});

test('a cut connection after storing a batch is retried: every message stored once', async () => {
  const channel = fresh();
  const proxy = await faultProxy(url, [{ forwardThen: 'drop' }, 'forward']);
  try {
    const body = await new Publisher({ url: proxy.url, publishKey, minDelayMs: 10 }).publishBatch([
      { channel, data: 'a' },
      { channel, data: 'b' },
    ]);
    assertDocumented('post', '/v1/publish', 200, body);
    assert.equal(proxy.requests, 2);
    assert.deepEqual(body.results.map((r) => [r.seq, r.duplicate]), [[1, true], [2, true]]);
  } finally {
    await proxy.close();
  }
  assert.deepEqual((await history(channel)).messages.map((m) => m.data), ['a', 'b']);
});

test('retries give up with the last error', async () => {
  const proxy = await faultProxy(url, [{ status: 503, body: { error: { code: 'store_unavailable', message: 'injected' } } }]);
  try {
    const error = await rejectsWith(
      () => new Publisher({ url: proxy.url, publishKey, retries: 2, minDelayMs: 5 }).publish(fresh(), 1),
      'store_unavailable',
      503,
    );
    assert.equal(error.attempts, 3);
    assert.equal(proxy.requests, 3);
  } finally {
    await proxy.close();
  }
});

test('errors carry the server\'s code and status, and client errors are not retried', async () => {
  const proxy = await faultProxy(url, ['forward']);
  try {
    const wrongKey = new Publisher({ url: proxy.url, publishKey: 'not-the-key', minDelayMs: 5 });
    await rejectsWith(() => wrongKey.publish(fresh(), 1), 'unauthorized', 401);
    assert.equal(proxy.requests, 1);
  } finally {
    await proxy.close();
  }
  await rejectsWith(() => comet.publish('bad channel!', 1), 'invalid_channel', 400);
  await rejectsWith(() => comet.history('bad channel!'), 'invalid_channel', 400);
  await rejectsWith(() => comet.publish(fresh(), 1, { id: 'has space' }), 'invalid_message_id', 400);
  await rejectsWith(() => comet.history(fresh(), { limit: 5000 }), 'invalid_limit', 400);
});

test('channel info reports what was published', async () => {
  const channel = fresh();
  const empty = await comet.channel(channel);
  assertDocumented('get', '/v1/channels/{channel}', 200, empty);
  assert.equal(empty.last_seq, 0);
  assert.equal(empty.retained_count, 0);
  await comet.publishBatch([1, 2, 3].map((data) => ({ channel, data })));
  // README: channel info
  const info = await comet.channel(channel);
  assertDocumented('get', '/v1/channels/{channel}', 200, info);
  assert.deepEqual(
    { channel: info.channel, last_seq: info.last_seq, retained_count: info.retained_count, first_seq: info.first_seq },
    { channel, last_seq: 3, retained_count: 3, first_seq: 1 },
  );
  assert.equal(info.epoch, (await history(channel)).epoch);
});

test('a minted token opens its private channel and only that one', async () => {
  const channel = fresh('private-node');
  // README: token
  const token = mintToken(secret, { channels: [channel], ttlSeconds: 3600, sub: 'user-42' });
  const poll = await fetch(`${url}/v1/poll?channel=${channel}&token=${token}&timeout=0&from=start`);
  const body = await poll.json();
  assert.equal(poll.status, 200, JSON.stringify(body));
  assertDocumented('get', '/v1/poll', 200, body);

  await comet.publish(channel, 'secret');
  const { messages } = await history(channel, { token });
  assert.deepEqual(messages.map((m) => m.data), ['secret']);
  assert.equal((await comet.channel(channel, { token })).last_seq, 1);

  const other = mintToken(secret, { channels: [fresh('private-other')] });
  const refused = await fetch(`${url}/v1/poll?channel=${channel}&token=${other}&timeout=0`);
  const error = await refused.json();
  assertDocumented('get', '/v1/poll', 403, error);
  assert.equal(refused.status, 403);
  assert.equal(error.error.code, 'channel_not_allowed');
  await rejectsWith(() => comet.history(channel, { token: other }), 'channel_not_allowed', 403);
  await rejectsWith(() => comet.history(channel), 'token_required', 403);
  await rejectsWith(() => comet.history(channel, { token: mintToken('wrong-secret', { channels: [channel] }) }), 'invalid_token', 401);
  await rejectsWith(() => comet.history(channel, { token: mintToken(secret, { channels: [channel], exp: 1_000_000 }) }), 'token_expired', 401);
  const prefix = mintToken(secret, { channels: ['private-node-*'] });
  assert.equal((await history(channel, { token: prefix })).messages.length, 1);
});

test('mintToken matches the format the server verifies (the Rust crate\'s known token)', () => {
  assert.equal(
    mintToken('test-secret', { channels: ['private-a'], exp: 1_800_000_060 }),
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJwcml2YXRlLWEiXSwiZXhwIjoxODAwMDAwMDYwfQ.0R0ZwMoVZDOItLh-Xw7ciUAaXKvA0JKHKMz9uJx18Wg',
  );
});

test('the README snippet runs as written', async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = readme.split('## Node')[1].match(/```js\n([\s\S]*?)```/)[1];
  const library = new URL('../comet-publisher.js', import.meta.url).href;
  const code = block.replace("from 'comet-publisher'", `from ${JSON.stringify(library)}`).replace("'http://127.0.0.1:3000'", JSON.stringify(url));
  assert.ok(code.includes(library) && code.includes(url), 'the snippet imports comet-publisher and names the default URL');
  const channel = fresh('readme');
  const file = join(tmpdir(), `comet-readme-${randomUUID()}.mjs`);
  writeFileSync(file, `const channel = ${JSON.stringify(channel)};\nconst secret = ${JSON.stringify(secret)};\n${code}`);
  try {
    await import(pathToFileURL(file).href);
  } finally {
    rmSync(file, { force: true });
  }
  const { messages } = await history(channel);
  assert.deepEqual(messages.map((m) => m.data), [{ text: 'hello' }, 'once', 'a', 'b']);
});
