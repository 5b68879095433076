// Comet browser client — a plain ES module, no dependencies, no build step.
//
//   import { Comet } from './comet.js';
//   const comet = new Comet({ url: 'https://push.example.com' });
//   comet.on('channel:chat', (e) => console.log(e.data));
//   comet.subscribe('chat');
//   comet.open();
//
// Native mode speaks Comet's /v1 API with a fallback chain of transports (SSE → NDJSON
// streaming → long-poll → JSONP), resumes from the last cursor after every reconnect, drops
// duplicates by (channel, seq) and surfaces `reset` when messages were lost to retention.
// `Comet.sockjs({...})` speaks the Jii-comet protocol over sockjs-client against /comet.

const TRANSPORTS = ['sse', 'stream', 'poll', 'jsonp'];

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
};

/** An Error with Comet's `code` (and HTTP `status`, `fatal` when known). */
export class CometError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'CometError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/**
 * The back-off delay (ms) before reconnect number `attempt` (0-based): full jitter,
 * `random() * min(max, initial * factor^attempt)`.
 */
export function backoffDelay(attempt, backoff = DEFAULTS.backoff, random = Math.random) {
  const b = { ...DEFAULTS.backoff, ...backoff };
  const ceiling = Math.min(b.max, b.initial * Math.pow(b.factor, Math.max(0, attempt)));
  return Math.floor(random() * ceiling);
}

let jsonpSeq = 0;

export class Comet {
  /** @param {object} options see comet.d.ts */
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) } };
    this.mode = this.options.mode === 'sockjs' ? 'sockjs' : 'native';
    this.url = String(this.options.url || (typeof location !== 'undefined' ? location.origin : '')).replace(/\/+$/, '');
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
    this._connect();
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
    if (this.mode === 'sockjs') this._command(this._subscribeCommand(ch));
    else this._resubscribe();
    return this;
  }

  unsubscribe(channel) {
    const ch = String(channel);
    if (!this.channels.delete(ch)) return this;
    this._seqs.delete(ch);
    if (this.mode === 'sockjs') this._command(`unsubscribe ${ch}`);
    else this._resubscribe();
    return this;
  }

  /**
   * Publishes `data` to channel `ch`: native mode `POST /v1/send` (the channel must allow
   * client publishing), SockJS mode Jii `channel <ch> <data>`.
   */
  send(channel, data) {
    if (this.mode !== 'sockjs') {
      return this._post('/v1/send', { channel, data }, this.options.requestTimeout).catch((err) => {
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
  async _post(path, body, timeout) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeout);
    const headers = { 'Content-Type': 'application/json' };
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
    try {
      const res = await fetch(`${this.url}${path}`, {
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

  // ---- connection management --------------------------------------------------------------

  _transports() {
    const list = (this.options.transports || TRANSPORTS).filter((t) => TRANSPORTS.includes(t));
    const usable = list.filter((t) => !this._demoted.has(t));
    return usable.length ? usable : list;
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
    // Reconnect at once with the new channel set, resuming from the cursor.
    this._transportIndex = this._transportIndex % Math.max(1, this._transports().length);
    this._connect();
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
    if (this.options.token) q.set('token', this.options.token);
    if (!this.cursor && this.options.from) q.set('from', this.options.from);
    for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) q.set(k, String(v));
    return q.toString();
  }

  // ---- transports (native /v1) ------------------------------------------------------------

  async _fetch(ctl, url) {
    const ac = new AbortController();
    ctl.abort = () => ac.abort();
    const res = await fetch(url, { signal: ac.signal, cache: 'no-store', credentials: 'omit' });
    if (!res.ok) throw await httpError(res);
    return res;
  }

  async _readLines(ctl, res, onLine) {
    const reader = res.body.getReader();
    const prev = ctl.abort;
    ctl.abort = () => {
      prev?.();
      reader.cancel().catch(() => {});
    };
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (ctl.dead) return;
      if (done) break;
      this._activity(ctl);
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.search(/\r\n|\n|\r/)) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + (buf[i] === '\r' && buf[i + 1] === '\n' ? 2 : 1));
        if (buf === '' && line.endsWith('\r')) continue;
        onLine(line);
        if (ctl.dead) return;
      }
    }
  }

  _open_sse(ctl, h) {
    ctl.streaming = true;
    const url = `${this.url}/v1/sse?${this._query({ lastEventId: this.cursor })}`;
    const useNative = typeof ReadableStream === 'undefined' && typeof EventSource !== 'undefined';
    if (useNative) return this._open_sse_native(ctl, h, url);
    (async () => {
      const res = await this._fetch(ctl, url);
      let event = '';
      let data = [];
      let id = null;
      await this._readLines(ctl, res, (line) => {
        if (line === '') {
          if (data.length) dispatch(event || 'message', data.join('\n'), id);
          event = '';
          data = [];
          id = null;
          return;
        }
        if (line[0] === ':') return; // padding / heartbeat comment (activity already noted)
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let value = c < 0 ? '' : line.slice(c + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      });
      if (!ctl.dead) h.end();
    })().catch((e) => h.fail(toNetError(e)));
    const dispatch = (event, data, id) => {
      let obj;
      try {
        obj = JSON.parse(data);
      } catch {
        return;
      }
      if (event === 'message') {
        if (id) obj.cursor = id;
        h.event(obj);
      } else if (event === 'ready') h.ready(obj.cursor || id);
      else if (event === 'reset') h.event({ ...obj, type: 'reset', cursor: id || undefined });
      else if (event === 'error') h.fail(toError(obj.error || obj, 0));
    };
  }

  _open_sse_native(ctl, h, url) {
    // Fallback for browsers without fetch streams: heartbeat comments are invisible here, so
    // the watchdog only runs between events.
    ctl.streaming = false;
    const es = new EventSource(url);
    ctl.abort = () => es.close();
    es.addEventListener('message', (e) => {
      const obj = JSON.parse(e.data);
      obj.cursor = e.lastEventId;
      h.event(obj);
    });
    es.addEventListener('ready', (e) => h.ready(JSON.parse(e.data).cursor));
    es.addEventListener('reset', (e) => h.event({ ...JSON.parse(e.data), type: 'reset', cursor: e.lastEventId }));
    es.addEventListener('error', (e) => {
      if (e.data) h.fail(toError(JSON.parse(e.data).error || {}, 0));
      else h.end();
    });
  }

  _open_stream(ctl, h) {
    ctl.streaming = true;
    const url = `${this.url}/v1/stream?${this._query({ cursor: this.cursor })}`;
    (async () => {
      const res = await this._fetch(ctl, url);
      await this._readLines(ctl, res, (line) => {
        if (!line.trim()) return;
        let obj;
        try {
          obj = JSON.parse(line);
        } catch {
          return;
        }
        if (obj.type === 'ready') h.ready(obj.cursor);
        else if (obj.type === 'heartbeat') {
          if (obj.cursor && ctl.ready) this.cursor = obj.cursor;
        } else if (obj.error) h.fail(toError(obj.error, 0));
        else h.event(obj);
      });
      if (!ctl.dead) h.end();
    })().catch((e) => h.fail(toNetError(e)));
  }

  _pollOnce(ctl, h, cursor, body) {
    h.activity();
    if (body.error) return h.fail(toError(body.error, 0));
    if (ctl.dead) return;
    if (!ctl.ready) h.ready(null);
    for (const m of body.messages || []) {
      if (ctl.dead) return;
      h.event(m);
    }
    if (!ctl.dead && body.cursor) this.cursor = body.cursor;
    // Keep polling with the new cursor (one held request at a time).
    if (!ctl.dead) {
      const timeout = this.options.pollTimeout;
      ctl.loop(this.cursor ? timeout : 0);
    }
  }

  _open_poll(ctl, h) {
    ctl.loop = (timeout) => {
      const url = `${this.url}/v1/poll?${this._query({ cursor: this.cursor, timeout })}`;
      clearTimeout(ctl.reqTimer);
      ctl.reqTimer = setTimeout(() => {
        if (!ctl.dead) h.fail(new CometError('timeout', `poll: no answer within ${timeout} s + ${this.options.pollSlack} ms`));
      }, timeout * 1000 + this.options.pollSlack);
      ctl.timers.push(ctl.reqTimer);
      (async () => {
        const res = await this._fetch(ctl, url);
        const body = await res.json();
        clearTimeout(ctl.reqTimer);
        if (!ctl.dead) this._pollOnce(ctl, h, this.cursor, body);
      })().catch((e) => {
        if (!ctl.dead) h.fail(toNetError(e));
      });
    };
    // The first request of a connection answers at once (it proves the transport).
    ctl.loop(0);
  }

  _open_jsonp(ctl, h) {
    if (typeof document === 'undefined') throw new CometError('unsupported', 'jsonp needs a DOM');
    const reg = (globalThis.__cometJsonp = globalThis.__cometJsonp || {});
    let script = null;
    let name = null;
    const cleanup = () => {
      if (name) reg[name] = () => {}; // a late answer must not throw
      const n = name;
      if (n) setTimeout(() => delete reg[n], 60000);
      script?.remove();
      script = null;
      name = null;
    };
    ctl.abort = cleanup;
    ctl.loop = (timeout) => {
      cleanup();
      name = `c${++jsonpSeq}`;
      const myName = name;
      const url = `${this.url}/v1/poll?${this._query({ cursor: this.cursor, timeout, callback: `__cometJsonp.${name}` })}`;
      clearTimeout(ctl.reqTimer);
      ctl.reqTimer = setTimeout(() => {
        if (!ctl.dead) h.fail(new CometError('timeout', `jsonp: no answer within ${timeout} s + ${this.options.pollSlack} ms`));
      }, timeout * 1000 + this.options.pollSlack);
      ctl.timers.push(ctl.reqTimer);
      reg[name] = (body) => {
        if (ctl.dead || name !== myName) return;
        clearTimeout(ctl.reqTimer);
        cleanup();
        this._pollOnce(ctl, h, this.cursor, body || {});
      };
      script = document.createElement('script');
      script.async = true;
      script.src = url;
      script.onerror = () => {
        if (!ctl.dead && name === myName) h.fail(new CometError('network', 'jsonp: script failed to load'));
      };
      (document.head || document.documentElement).appendChild(script);
    };
    ctl.loop(0);
  }

  // ---- SockJS + Jii-comet -----------------------------------------------------------------

  /** `subscribe <ch>`, with the token appended when one is set (for private channels). */
  _subscribeCommand(ch) {
    const token = this.options.token;
    return token ? `subscribe ${ch} ${token}` : `subscribe ${ch}`;
  }

  _sockUrl() {
    const u = new URL(this.url, typeof location !== 'undefined' ? location.href : undefined);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/comet';
    return u.toString().replace(/\/+$/, '');
  }

  _connectSockjs(gen) {
    const SockJS = this.options.SockJS || globalThis.SockJS;
    if (typeof SockJS !== 'function') {
      this._fatal = new CometError('unsupported', 'sockjs mode needs sockjs-client (options.SockJS or globalThis.SockJS)', { fatal: true });
      this._emit('error', this._fatal);
      this._setState('closed');
      return;
    }
    // 32-character session ids (160 bits): a session's messages go to whoever knows its id.
    const opts = { sessionId: 32, ...(this.options.sockjsOptions || {}) };
    if (this.options.transports && this.options.transports !== TRANSPORTS) opts.transports = this.options.transports;
    const sock = new SockJS(this._sockUrl(), null, opts);
    const ctl = { gen, sock, ready: false, timers: [], abort: () => sock.close() };
    this._conn = ctl;
    this._emit('connecting', { transport: 'sockjs', attempt: this.attempt });
    ctl.timers.push(
      setTimeout(() => {
        if (this._conn === ctl && !ctl.ready) this._sockLost(new CometError('timeout', 'sockjs: not open in time'));
      }, this.options.firstByteTimeout),
    );
    sock.onopen = () => {
      if (this._conn !== ctl) return;
      ctl.ready = true;
      this.transport = sock.transport;
      this._everOpened = true;
      this._lastActivity = Date.now();
      // Re-subscribe everything, then flush what was queued while connecting.
      for (const ch of this.channels) sock.send(this._subscribeCommand(ch));
      const queued = this._outbox;
      this._outbox = [];
      for (const cmd of queued) {
        if (/^(un)?subscribe /.test(cmd)) continue; // covered by the channel set above
        sock.send(cmd);
      }
      this._setState('open');
      this._emit('open', { transport: sock.transport, attempt: this.attempt });
      clearTimeout(this._stableTimer);
      this._stableTimer = setTimeout(() => {
        if (this._conn === ctl) this.attempt = 0;
      }, this.options.stableAfter);
    };
    sock.onmessage = (e) => {
      if (this._conn !== ctl) return;
      this._lastActivity = Date.now();
      this._jii(String(e.data));
    };
    sock.onclose = (e) => {
      if (this._conn !== ctl) return;
      this._sockLost(e.code === 1000 || e.code === 3000 ? null : new CometError('closed', `sockjs closed ${e.code} ${e.reason || ''}`.trim(), { closeCode: e.code }));
    };
  }

  _sockLost(err) {
    const ctl = this._conn;
    if (!ctl) return;
    const wasReady = ctl.ready;
    this._teardown();
    this._rejectPending(new CometError('disconnected', 'the connection closed before the answer came'));
    if (err) this._emit('error', err);
    if (wasReady) this._emit('close', { reason: err ? 'error' : 'ended', error: err || undefined, willReconnect: this._want });
    if (!this._want) return;
    this._setState('connecting');
    this._scheduleReconnect();
  }

  _command(cmd) {
    const ctl = this._conn;
    if (this.state === 'open' && ctl && ctl.sock) ctl.sock.send(cmd);
    else this._outbox.push(cmd);
  }

  _jii(text) {
    const sp = text.indexOf(' ');
    const cmd = sp < 0 ? text : text.slice(0, sp);
    const rest = sp < 0 ? '' : text.slice(sp + 1);
    if (cmd === 'channel') {
      const sp2 = rest.indexOf(' ');
      const channel = sp2 < 0 ? rest : rest.slice(0, sp2);
      const raw = sp2 < 0 ? '' : rest.slice(sp2 + 1);
      let data = raw;
      try {
        data = JSON.parse(raw);
      } catch {
        /* plain text */
      }
      if (!this.channels.has(channel)) return;
      const event = { channel, data, message: data, raw };
      this._emit('channel', event);
      this._emit(`channel:${channel}`, event);
    } else if (cmd === 'action') {
      let obj;
      try {
        obj = JSON.parse(rest);
      } catch {
        return;
      }
      const p = this._pending.get(obj.requestUid);
      if (!p) return;
      this._pending.delete(obj.requestUid);
      clearTimeout(p.timer);
      const { requestUid, ...answer } = obj;
      if (answer.error && typeof answer.error === 'object' && answer.error.code) {
        p.reject(new CometError(answer.error.code, answer.error.message, { requestUid, route: p.route }));
      } else p.resolve(answer);
    } else if (cmd === 'error') {
      let obj = {};
      try {
        obj = JSON.parse(rest);
      } catch {
        /* ignore */
      }
      this._emit('error', new CometError(obj.code || 'error', obj.message || rest, { command: obj.command }));
    } else {
      this._emit('message', text);
    }
  }

  _rejectPending(err) {
    for (const [uid, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(Object.assign(new CometError(err.code, err.message), { requestUid: uid, route: p.route }));
    }
    this._pending.clear();
  }
}

function toError(e, status) {
  const code = (e && e.code) || 'error';
  const message = (e && e.message) || code;
  const fatal = status ? status >= 400 && status < 500 && status !== 408 && status !== 429 : FATAL_CODES.has(code);
  return new CometError(code, message, { status: status || undefined, fatal });
}

const FATAL_CODES = new Set([
  'token_required',
  'invalid_token',
  'token_expired',
  'channel_not_allowed',
  'invalid_channel',
  'invalid_cursor',
  'too_many_channels',
  'forbidden',
  'bad_request',
]);

async function httpError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  const err = toError(body && body.error ? body.error : { code: `http_${res.status}`, message: `HTTP ${res.status}` }, res.status);
  const ra = Number(res.headers.get('retry-after'));
  if (ra > 0) err.retryAfter = ra;
  return err;
}

function toNetError(e) {
  if (e instanceof CometError) return e;
  return new CometError('network', String((e && e.message) || e));
}

export default Comet;
