// Publish to Comet from a backend (Node >= 20, no dependencies).
//
// Every publish carries an idempotency `id` (generated when the caller gives none) and keeps
// it on every retry, so a retry after a lost answer is recognised by the server
// (`duplicate: true`) instead of storing the message twice. That is what makes retrying
// network errors, 429 and 5xx safe. The protocol is in ../../docs/protocol.md and
// ../../openapi.yaml.

import { createHmac, randomUUID } from 'node:crypto';

/** Codes that mean "fix the deployment", not "try again": retrying them only adds delay. */
const PERMANENT_5XX = new Set(['publishing_disabled', 'bad_configuration']);

/** An error answer from Comet (`{"error":{"code","message"}}`), or `network_error` (status 0). */
export class CometError extends Error {
  /**
   * @param {string} code stable machine-readable code (see openapi.yaml `ErrorCode`)
   * @param {number} status HTTP status, 0 when no answer arrived
   * @param {string} message for people
   * @param {{retryAfter?: number, attempts?: number, cause?: unknown}} [extra]
   */
  constructor(code, status, message, extra = {}) {
    super(`${code} (${status}): ${message}`, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'CometError';
    this.code = code;
    this.status = status;
    this.retryAfter = extra.retryAfter;
    this.attempts = extra.attempts;
  }
}

export class Publisher {
  /**
   * @param {object} options
   * @param {string} options.url base URL, e.g. `http://127.0.0.1:3000`
   * @param {string} [options.publishKey] the deployment's `publish_key` (needed to publish)
   * @param {number} [options.retries=5] retries after the first attempt
   * @param {number} [options.minDelayMs=200] first back-off ceiling
   * @param {number} [options.maxDelayMs=10000] largest back-off (and largest honoured Retry-After)
   * @param {number} [options.timeoutMs=10000] per attempt; a timeout counts as a network error
   * @param {typeof fetch} [options.fetch] for tests or custom agents
   */
  constructor({ url, publishKey, retries = 5, minDelayMs = 200, maxDelayMs = 10_000, timeoutMs = 10_000, fetch: fetchImpl } = {}) {
    if (!url) throw new TypeError('Publisher: url is required');
    this.url = String(url).replace(/\/+$/, '');
    this.publishKey = publishKey;
    this.retries = retries;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.timeoutMs = timeoutMs;
    this.fetch = fetchImpl ?? globalThis.fetch;
  }

  /** Publishes one message; resolves to the server's `PublishResult`. */
  async publish(channel, data, { id } = {}) {
    return this.#post({ channel, data, id: id ?? randomUUID() });
  }

  /**
   * Publishes `[{channel, data, id?}]` in one request (in order); resolves to `{results: [...]}`.
   * Ids are filled in before the first attempt, so a retried batch is de-duplicated per message.
   */
  async publishBatch(messages) {
    if (!Array.isArray(messages) || messages.length === 0) throw new TypeError('publishBatch: a non-empty array is required');
    return this.#post(messages.map(({ channel, data, id }) => ({ channel, data, id: id ?? randomUUID() })));
  }

  /** `GET /v1/history/{channel}`: messages with `seq > since`, oldest first. */
  async history(channel, { since, limit, token } = {}) {
    const query = new URLSearchParams();
    if (since !== undefined) query.set('since', String(since));
    if (limit !== undefined) query.set('limit', String(limit));
    if (token !== undefined) query.set('token', token);
    return this.#get(`/v1/history/${encodeURIComponent(channel)}`, query);
  }

  /** `GET /v1/channels/{channel}`: `{channel, epoch, last_seq, retained_count, first_seq}`. */
  async channel(channel, { token } = {}) {
    const query = new URLSearchParams();
    if (token !== undefined) query.set('token', token);
    return this.#get(`/v1/channels/${encodeURIComponent(channel)}`, query);
  }

  #post(body) {
    if (!this.publishKey) throw new TypeError('Publisher: publishKey is required to publish');
    const init = {
      method: 'POST',
      headers: { authorization: `Bearer ${this.publishKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    };
    return this.#request('/v1/publish', init);
  }

  // Reads send no Authorization header: the server takes a bearer there as a subscribe token,
  // so the publish key would be refused as `invalid_token`. Private channels take `token`.
  #get(path, query) {
    const qs = query.toString();
    return this.#request(qs ? `${path}?${qs}` : path, { method: 'GET' });
  }

  async #request(path, init) {
    let lastError;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await sleep(this.#delay(attempt, lastError));
      let response;
      try {
        response = await this.fetch(this.url + path, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (cause) {
        lastError = new CometError('network_error', 0, String(cause?.message ?? cause), { cause, attempts: attempt + 1 });
        continue;
      }
      let text;
      try {
        text = await response.text();
      } catch (cause) {
        // The connection broke mid-body: as lost as no answer at all.
        lastError = new CometError('network_error', 0, String(cause?.message ?? cause), { cause, attempts: attempt + 1 });
        continue;
      }
      if (response.ok) return JSON.parse(text);
      lastError = errorFrom(response, text, attempt + 1);
      if (!retryable(lastError)) throw lastError;
    }
    throw lastError;
  }

  /** Full-jitter exponential back-off, or the server's Retry-After (capped at maxDelayMs). */
  #delay(attempt, error) {
    if (error?.retryAfter !== undefined) return Math.min(error.retryAfter * 1000, this.maxDelayMs);
    const ceiling = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** (attempt - 1));
    return Math.random() * ceiling;
  }
}

function retryable(error) {
  return error.status === 429 || (error.status >= 500 && !PERMANENT_5XX.has(error.code));
}

function errorFrom(response, text, attempts) {
  let code = `http_${response.status}`;
  let message = text.slice(0, 200);
  try {
    const body = JSON.parse(text);
    if (typeof body?.error?.code === 'string') {
      code = body.error.code;
      message = String(body.error.message ?? '');
    }
  } catch {
    // Not Comet's JSON (a proxy's page): keep the status-derived code.
  }
  const header = response.headers.get('retry-after');
  const retryAfter = header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
  return new CometError(code, response.status, message, { retryAfter, attempts });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const b64url = (value) => Buffer.from(value).toString('base64url');

/**
 * Mints a subscribe token (HS256 JWT) the server accepts for private channels.
 * @param {string} secret the deployment's `token_secret`
 * @param {object} claims
 * @param {string[]} claims.channels exact names or `prefix*`
 * @param {number} [claims.ttlSeconds=3600] lifetime from now (ignored when `exp` is given)
 * @param {number} [claims.exp] expiry, Unix seconds
 * @param {number} [claims.nbf] not before, Unix seconds
 * @param {string} [claims.sub] who it is for (not checked by the server)
 */
export function mintToken(secret, { channels, ttlSeconds = 3600, exp, nbf, sub } = {}) {
  if (!secret) throw new TypeError('mintToken: secret is required');
  if (!Array.isArray(channels) || channels.length === 0) throw new TypeError('mintToken: channels must be a non-empty array');
  const claims = { channels, exp: Math.floor(exp ?? Date.now() / 1000 + ttlSeconds) };
  if (sub !== undefined) claims.sub = sub;
  if (nbf !== undefined) claims.nbf = Math.floor(nbf);
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
