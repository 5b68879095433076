// Comet browser client — plain ES modules, no dependencies, no build step (npm:
// comet-push-client). Runs in browsers (`<script type="module">`), bundlers and Node >= 20.
//
//   import { Comet } from './comet.js';   // or 'comet-push-client'
//   const comet = new Comet({ url: 'https://push.example.com' });
//   comet.on('channel:chat', (e) => console.log(e.data));
//   comet.subscribe('chat');
//   comet.open();
//
// Native mode speaks Comet's /v1 API with a fallback chain of transports (SSE → NDJSON
// streaming → long-poll → JSONP), resumes from the last cursor after every reconnect, drops
// duplicates by (channel, seq) and surfaces `reset` when messages were lost to retention.
// `Comet.sockjs({...})` speaks the Jii-comet protocol over sockjs-client against /comet.

import { CometError, httpError, toError, toNetError } from './errors.js';
import { tokenMethods } from './tokens.js';
import { TRANSPORTS, transportMethods, unsupportedReason } from './transports.js';
import { sockjsMethods } from './sockjs.js';

export { CometError };

const DEFAULTS = {
  url: '',
  transports: TRANSPORTS,
  channels: [],
  token: null,
  from: null,
  pollTimeout: 25,
  pollSlack: 10000,
  firstByteTimeout: 8000,
  heartbeatTimeout: 35000,
  backoff: { initial: 500, max: 30000, factor: 2 },
  stableAfter: 10000,
  requestTimeout: 15000,
  autoOpen: false,
  watchPage: true,
  random: null,
  SockJS: null,
  sockjsOptions: null,
  getToken: null,
  EventSource: null,
  fetch: null,
};

/**
 * The back-off delay (ms) before reconnect number `attempt` (0-based): full jitter,
 * `random() * min(max, initial * factor^attempt)`.
 */
export function backoffDelay(attempt, backoff = DEFAULTS.backoff, random = Math.random) {
  const b = { ...DEFAULTS.backoff, ...backoff };
  const ceiling = Math.min(b.max, b.initial * Math.pow(b.factor, Math.max(0, attempt)));
  return Math.floor(random() * ceiling);
}

/** Calls `fn` once after the current task's synchronous code (several calls, one run). */
const microtask = typeof queueMicrotask === 'function' ? queueMicrotask : (fn) => Promise.resolve().then(fn);

export class Comet {
  /** @param {object} options see comet.d.ts */
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) } };
    this.mode = this.options.mode === 'sockjs' ? 'sockjs' : 'native';
    // Outside a page (Node) there is no origin to default to: say so now, not at fetch time.
    if (!this.options.url && typeof location === 'undefined') {
      throw new CometError('bad_request', 'options.url is required where there is no location (e.g. in Node)');
    }
    this.url = String(this.options.url || location.origin).replace(/\/+$/, '');
    this.state = 'closed';
    this.transport = null;
    this.cursor = this.options.cursor || null;
    this.channels = new Set();
    this.attempt = 0;
    this._listeners = new Map();
    this._seqs = new Map(); // channel -> {epoch, seq}
    this._want = false;
    this._conn = null; // the live connection's controller
    this._timer = null; // back-off timer
    this._stableTimer = null;
    this._generation = 0;
    this._transportIndex = 0;
    this._proven = new Set(); // transports that reached `ready` at least once
    this._demoted = new Set(); // transports that looked buffered (no first byte)
    this._roundFailures = 0;
    this._lastActivity = 0;
    this._fatal = null;
    this._pending = new Map(); // sockjs: requestUid -> {resolve, reject, timer}
    this._outbox = []; // sockjs: commands queued while connecting
    this._uid = 0;
    // Tokens (README "Tokens"): getToken answers by channel-set key; channels the server
    // called private although not named `private-…`; refreshes since the last `ready`.
    this._tokens = new Map(); // key -> Promise<string|null>
    this._token = this.options.token || null; // the token of the current native connection
    this._learnedPrivate = new Set();
    this._tokenForAll = false;
    this._tokenReason = 'subscribe';
    this._tokenRetries = 0;
    this._sockRetries = new Map(); // sockjs: channel -> {n, t}
    this._flushQueued = false;
    this._skipped = new Set();
    this._random = typeof this.options.random === 'function' ? this.options.random : Math.random;
    for (const ch of this.options.channels || []) this.channels.add(String(ch));
    this._onPage = (ev) => this._pageEvent(ev);
    if (this.options.autoOpen) this.open();
  }

  /** SockJS + Jii-comet protocol against `<url>/comet` (or the given path). */
  static sockjs(options = {}) {
    return new Comet({ ...options, mode: 'sockjs' });
  }

  static get backoffDelay() {
    return backoffDelay;
  }

  // ---- events -----------------------------------------------------------------------------

  on(name, fn) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(fn);
    return this;
  }

  off(name, fn) {
    if (name === undefined) this._listeners.clear();
    else if (fn === undefined) this._listeners.delete(name);
    else this._listeners.get(name)?.delete(fn);
    return this;
  }

  _emit(name, ...args) {
    const set = this._listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn.apply(this, args);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit('state', s);
  }

  // ---- public API -------------------------------------------------------------------------

  open() {
    if (this._want) return this;
    this._want = true;
    this._fatal = null;
    this.attempt = 0;
    this._transportIndex = 0;
    this._roundFailures = 0;
    this._watchPage(true);
    this._setState('connecting');
    this._schedule();
    return this;
  }

  close() {
    const wasOpen = this.state === 'open';
    this._want = false;
    this._watchPage(false);
    clearTimeout(this._timer);
    this._timer = null;
    this._teardown();
    this._rejectPending(new CometError('closed', 'the client was closed'));
    this._outbox = [];
    this._setState('closed');
    if (wasOpen || this._everOpened) this._emit('close', { reason: 'closed', willReconnect: false });
    return this;
  }

  subscribe(channel) {
    const ch = String(channel);
    if (this.channels.has(ch)) return this;
    this.channels.add(ch);
    if (this.mode === 'sockjs') this._sockSubscribe(ch);
    else this._resubscribe();
    return this;
  }

  unsubscribe(channel) {
    const ch = String(channel);
    if (!this.channels.delete(ch)) return this;
    this._seqs.delete(ch);
    this._sockRetries.delete(ch);
    if (this.mode === 'sockjs') this._command(`unsubscribe ${ch}`);
    else this._resubscribe();
    return this;
  }

  /**
   * Publishes `data` to channel `ch`: native mode `POST /v1/send` (the channel must allow
   * client publishing; a private one also needs a token, from getToken when set), resolving
   * with `{channel, seq, epoch, time}`; SockJS mode Jii `channel <ch> <data>`, resolving with
   * undefined once queued (a refusal arrives later as an `error` event).
   */
  send(channel, data) {
    if (this.mode !== 'sockjs') {
      const ch = String(channel);
      const token = this._usesGetToken([ch]) ? this._tokenFor([ch], 'send') : Promise.resolve(this._token || this.options.token);
      return token.then((t) => this._post('/v1/send', { channel: ch, data }, this.options.requestTimeout, t)).catch((err) => {
        this._emit('error', err);
        throw err;
      });
    }
    this._command(`channel ${channel} ${typeof data === 'string' ? data : JSON.stringify(data)}`);
    return Promise.resolve();
  }

  /**
   * Calls action `route` with `data`; resolves with its answer, rejects on an error answer or
   * after `timeout` ms (never hangs). Native mode `POST /v1/action/{route}`, SockJS mode Jii
   * `action <route> <json>`.
   */
  request(route, data = {}, opts = {}) {
    const timeout = opts.timeout ?? this.options.requestTimeout;
    if (this.mode !== 'sockjs') {
      const path = `/v1/action/${String(route).split('/').map(encodeURIComponent).join('/')}`;
      return this._post(path, data ?? {}, timeout);
    }
    const requestUid = `${Date.now().toString(36)}${(++this._uid).toString(36)}${this._random().toString(36).slice(2, 8)}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(requestUid);
        reject(new CometError('timeout', `request "${route}" got no answer within ${timeout} ms`));
      }, timeout);
      this._pending.set(requestUid, { resolve, reject, timer, route });
      const params = data && typeof data === 'object' && !Array.isArray(data) ? data : { data };
      this._command(`action ${route} ${JSON.stringify({ ...params, requestUid })}`);
    });
  }

  /** POSTs JSON to the native API with the token and a timeout; resolves with the JSON answer. */
  async _post(path, body, timeout, token = this._token || this.options.token) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeout);
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      const res = await this._fetchFn()(`${this.url}${path}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: ctl.signal,
        cache: 'no-store',
      });
      if (!res.ok) throw await httpError(res);
      return await res.json();
    } catch (e) {
      if (ctl.signal.aborted) throw new CometError('timeout', `${path} got no answer within ${timeout} ms`);
      throw toNetError(e);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The fetch to use: options.fetch (e.g. with a custom agent) or the global one. */
  _fetchFn() {
    return this.options.fetch || globalThis.fetch;
  }

  // ---- connection management --------------------------------------------------------------

  /** The configured transports that can run here, minus demoted ones (unless none is left). */
  _transports() {
    const all = (this.options.transports || TRANSPORTS).filter((t) => TRANSPORTS.includes(t));
    const list = all.filter((t) => {
      const why = unsupportedReason(t, this.options);
      if (why && !this._skipped.has(t)) {
        this._skipped.add(t);
        this._emit('skip', { transport: t, reason: why });
      }
      return !why;
    });
    const usable = list.filter((t) => !this._demoted.has(t));
    return usable.length ? usable : list;
  }

  /**
   * Connects once the current task's synchronous code is done, so `subscribe('a');
   * subscribe('b'); subscribe('c')` (or several components mounting) opens one request.
   */
  _schedule() {
    if (this._flushQueued) return;
    this._flushQueued = true;
    microtask(() => {
      this._flushQueued = false;
      this._connect();
    });
  }

  _connect() {
    if (!this._want || this._fatal) return;
    clearTimeout(this._timer);
    this._timer = null;
    this._teardown();
    this._setState('connecting');
    const gen = ++this._generation;
    if (this.mode === 'sockjs') return this._connectSockjs(gen);
    if (this.channels.size === 0) return; // nothing to listen to until subscribe()
    const list = this._transports();
    if (!list.length) {
      const reasons = (this.options.transports || TRANSPORTS).map((t) => unsupportedReason(t, this.options) || `${t}: unknown transport`);
      this._fatal = new CometError('unsupported', `no usable transport here: ${reasons.join('; ')}`, { fatal: true });
      this._emit('error', this._fatal);
      this._setState('closed');
      return;
    }
    // Private channels: a token from getToken first (one call per channel set, cached).
    const needy = [...this.channels].filter((ch) => this._needsToken(ch));
    if (typeof this.options.getToken === 'function' && needy.length) {
      this._tokenFor(needy, this._tokenReason).then(
        (t) => {
          if (this._generation === gen && this._want && !this._fatal) {
            this._token = t;
            this._tokenReason = 'subscribe';
            this._openNative(gen, list);
          }
        },
        (e) => {
          if (this._generation !== gen || !this._want) return;
          this._emit('error', e);
          this._scheduleReconnect();
        },
      );
      return;
    }
    this._token = this.options.token || null;
    this._openNative(gen, list);
  }

  /** Opens transport number _transportIndex of `list` for generation `gen`. */
  _openNative(gen, list) {
    const name = list[this._transportIndex % list.length];
    this.transport = name;
    this._emit('connecting', { transport: name, attempt: this.attempt });
    const ctl = {
      gen,
      name,
      ready: false,
      abort: null,
      timers: [],
    };
    this._conn = ctl;
    const handlers = {
      activity: () => this._activity(ctl),
      ready: (cursor) => this._ready(ctl, cursor),
      event: (ev) => this._event(ctl, ev),
      fail: (err) => this._fail(ctl, err),
      end: () => this._fail(ctl, null),
    };
    // Buffering proxy detection: no first event (`ready`) within firstByteTimeout.
    ctl.timers.push(
      setTimeout(() => {
        if (this._conn === ctl && !ctl.ready) {
          this._demoted.add(name);
          this._fail(ctl, new CometError('no_first_byte', `${name}: nothing received within ${this.options.firstByteTimeout} ms (buffering proxy?)`, { buffered: true }));
        }
      }, this.options.firstByteTimeout),
    );
    try {
      this['_open_' + name](ctl, handlers);
    } catch (e) {
      this._fail(ctl, e);
    }
  }

  _teardown() {
    const ctl = this._conn;
    this._conn = null;
    clearTimeout(this._stableTimer);
    this._stableTimer = null;
    if (!ctl) return;
    ctl.dead = true;
    for (const t of ctl.timers) clearTimeout(t);
    clearTimeout(ctl.watchdog);
    try {
      ctl.abort?.();
    } catch {
      /* ignore */
    }
  }

  _resubscribe() {
    if (!this._want) return;
    this._fatal = null;
    if (this.state === 'closed' && !this._timer) this._setState('connecting');
    // Reconnect with the new channel set, resuming from the cursor: once per task, however
    // many subscribe()/unsubscribe() calls it makes.
    this._transportIndex = this._transportIndex % Math.max(1, this._transports().length);
    this._schedule();
  }

  _activity(ctl) {
    if (this._conn !== ctl) return;
    this._lastActivity = Date.now();
    if (ctl.streaming) {
      clearTimeout(ctl.watchdog);
      ctl.watchdog = setTimeout(() => {
        if (this._conn === ctl) this._fail(ctl, new CometError('heartbeat_timeout', `${ctl.name}: no data or heartbeat for ${this.options.heartbeatTimeout} ms`));
      }, this.options.heartbeatTimeout);
    }
  }

  _ready(ctl, cursor) {
    if (this._conn !== ctl) return;
    if (cursor) this.cursor = cursor;
    this._activity(ctl);
    if (ctl.ready) return;
    ctl.ready = true;
    this._tokenRetries = 0;
    this._proven.add(ctl.name);
    this._roundFailures = 0;
    this._everOpened = true;
    this._setState('open');
    this._emit('open', { transport: ctl.name, attempt: this.attempt });
    // The back-off resets only after a stable connection.
    clearTimeout(this._stableTimer);
    this._stableTimer = setTimeout(() => {
      if (this._conn === ctl) this.attempt = 0;
    }, this.options.stableAfter);
  }

  _event(ctl, ev) {
    if (this._conn !== ctl) return;
    this._activity(ctl);
    if (ev.type === 'reset') {
      if (!this.channels.has(ev.channel)) return;
      // Next message to expect is ev.seq (the first available).
      this._seqs.set(ev.channel, { epoch: ev.epoch, seq: (ev.seq ?? 1) - 1 });
      if (ev.cursor) this.cursor = ev.cursor;
      this._emit('reset', { channel: ev.channel, epoch: ev.epoch, seq: ev.seq });
      return;
    }
    if (ev.type === 'error') {
      this._fail(ctl, toError(ev.error || ev, 0));
      return;
    }
    if (ev.type || ev.channel === undefined) return;
    if (ev.cursor) this.cursor = ev.cursor;
    this._deliver(ev);
  }

  _deliver(env) {
    if (!this.channels.has(env.channel)) return;
    const last = this._seqs.get(env.channel);
    if (last && last.epoch === env.epoch && typeof env.seq === 'number' && env.seq <= last.seq) {
      this._emit('duplicate', env);
      return;
    }
    this._seqs.set(env.channel, { epoch: env.epoch, seq: env.seq });
    const event = {
      channel: env.channel,
      data: env.data,
      message: env.data,
      seq: env.seq,
      epoch: env.epoch,
      time: env.time,
    };
    this._emit('channel', event);
    this._emit(`channel:${env.channel}`, event);
  }

  _fail(ctl, err) {
    if (this._conn !== ctl) return;
    const wasReady = ctl.ready;
    this._teardown();
    if (err && this._refreshToken(err)) {
      // An expired or missing token: ask getToken for a fresh one and reconnect at once.
      this._emit('error', err);
      if (wasReady) this._emit('close', { reason: 'error', error: err, willReconnect: true });
      this._setState('connecting');
      this._connect();
      return;
    }
    if (err && err.fatal) {
      this._fatal = err;
      this._emit('error', err);
      this._setState('closed');
      this._emit('close', { reason: 'error', error: err, willReconnect: false });
      return;
    }
    if (err) this._emit('error', err);
    if (wasReady) this._emit('close', { reason: err ? 'error' : 'ended', error: err || undefined, willReconnect: true });
    if (!this._want) return;
    this._setState('connecting');
    // A stream the server ended cleanly (max_stream_seconds) or a poll cycle: reconnect at once.
    if (wasReady && !err) {
      this._connect();
      return;
    }
    const list = this._transports();
    if (!wasReady && !this._proven.has(ctl.name) && list.length > 1) {
      // Never worked here: try the next transport; back off only after a whole round failed.
      this._transportIndex = (this._transportIndex + 1) % list.length;
      this._roundFailures++;
      if (this._roundFailures < list.length) {
        this._connect();
        return;
      }
      this._roundFailures = 0;
    } else if (err && err.buffered) {
      this._transportIndex = 0;
    }
    this._scheduleReconnect(err && err.retryAfter ? err.retryAfter * 1000 : 0);
  }

  _scheduleReconnect(minDelay = 0) {
    const delay = Math.max(minDelay, backoffDelay(this.attempt, this.options.backoff, this._random));
    const attempt = this.attempt;
    this.attempt++;
    this._emit('reconnecting', { attempt, delay, transport: this.transport });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      this._timer = null;
      this._connect();
    }, delay);
  }

  // Tabs back from background/sleep, network back: check the connection now.
  _watchPage(on) {
    if (!this.options.watchPage || typeof window === 'undefined' || !window.addEventListener) return;
    const f = on ? 'addEventListener' : 'removeEventListener';
    window[f]('online', this._onPage);
    window[f]('offline', this._onPage);
    if (typeof document !== 'undefined') document[f]('visibilitychange', this._onPage);
  }

  _pageEvent(ev) {
    if (!this._want) return;
    if (ev.type === 'offline') {
      // Dead for sure: drop the connection now instead of waiting for the watchdog.
      if (this.mode === 'sockjs') this._sockLost(new CometError('offline', 'the browser went offline'));
      else if (this._conn) this._fail(this._conn, new CometError('offline', 'the browser went offline'));
      return;
    }
    if (ev.type === 'visibilitychange' && document.visibilityState !== 'visible') return;
    if (this._timer) {
      // Waiting to reconnect: do it now.
      this._connect();
      return;
    }
    const stale = Date.now() - this._lastActivity > this.options.heartbeatTimeout;
    if (this.mode === 'native' && this._conn && this._conn.streaming && stale) {
      this._fail(this._conn, new CometError('heartbeat_timeout', 'connection stale after sleep'));
    }
  }

  // ---- URL building -----------------------------------------------------------------------

  _query(extra = {}) {
    const q = new URLSearchParams();
    for (const ch of this.channels) q.append('channel', ch);
    if (this._token) q.set('token', this._token);
    if (!this.cursor && this.options.from) q.set('from', this.options.from);
    for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) q.set(k, String(v));
    return q.toString();
  }

  _rejectPending(err) {
    for (const [uid, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(Object.assign(new CometError(err.code, err.message), { requestUid: uid, route: p.route }));
    }
    this._pending.clear();
  }
}

// Tokens, the native transports and SockJS mode live in their own modules (to keep each
// file readable); their methods are Comet's.
Object.assign(Comet.prototype, tokenMethods, transportMethods, sockjsMethods);

export default Comet;
