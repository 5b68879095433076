// Native-mode transports (Comet's /v1 API), mixed into Comet.prototype by comet.js. Each
// `_open_<name>(ctl, h)` opens one connection for the client's whole channel set and reports
// through the handlers `h` (activity, ready, event, fail, end); `ctl` is that connection's
// controller (`ctl.dead` once it was torn down, `ctl.abort()` to stop it).
//
// Only globals that browsers, bundlers and Node >= 20 share are used (fetch, ReadableStream,
// TextDecoder, AbortController); `EventSource` and `document` are looked up when needed, so
// loading this module never throws where they are missing.

import { CometError, httpError, toError, toNetError } from './errors.js';

/** Native transports in the default fallback order. */
export const TRANSPORTS = ['sse', 'stream', 'poll', 'jsonp'];

let jsonpSeq = 0;

/**
 * Why transport `name` cannot run here (a sentence), or null when it can. JSONP needs a DOM
 * to add `<script>` elements to; the rest need `fetch` (sse can also use an EventSource).
 */
export function unsupportedReason(name, options) {
  const hasFetch = typeof (options.fetch || globalThis.fetch) === 'function';
  if (name === 'jsonp') {
    return typeof document === 'undefined' || typeof document.createElement !== 'function'
      ? 'jsonp needs a DOM (document) to load <script> elements; it is skipped outside browsers'
      : null;
  }
  if (name === 'sse') {
    return hasFetch || typeof (options.EventSource || globalThis.EventSource) === 'function'
      ? null
      : 'sse needs fetch or an EventSource (options.EventSource)';
  }
  return hasFetch ? null : `${name} needs fetch (options.fetch)`;
}

export const transportMethods = {
  async _fetch(ctl, url) {
    const ac = new AbortController();
    ctl.abort = () => ac.abort();
    const res = await this._fetchFn()(url, { signal: ac.signal, cache: 'no-store', credentials: 'omit' });
    if (!res.ok) throw await httpError(res);
    return res;
  },

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
  },

  _open_sse(ctl, h) {
    ctl.streaming = true;
    const url = `${this.url}/v1/sse?${this._query({ lastEventId: this.cursor })}`;
    // options.EventSource (e.g. npm `eventsource` in Node) wins; without fetch streams the
    // platform's EventSource is the fallback.
    const fetchStreams = typeof ReadableStream !== 'undefined' && typeof this._fetchFn() === 'function';
    const ES = this.options.EventSource || (fetchStreams ? null : globalThis.EventSource);
    if (typeof ES === 'function') return this._open_sse_native(ctl, h, url, ES);
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
  },

  _open_sse_native(ctl, h, url, EventSourceImpl) {
    // An EventSource (browsers without fetch streams, or options.EventSource): heartbeat
    // comments are invisible here, so the watchdog only runs between events.
    ctl.streaming = false;
    const es = new EventSourceImpl(url);
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
      // npm `eventsource` reports the HTTP status of a refused request as `code` (a 401 is
      // usually an expired token: the client may refresh it).
      else if (typeof e.code === 'number' && e.code >= 400) h.fail(toError({ code: `http_${e.code}`, message: e.message || `HTTP ${e.code}` }, e.code));
      else h.end();
    });
  },

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
  },

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
  },

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
  },

  _open_jsonp(ctl, h) {
    const why = unsupportedReason('jsonp', this.options);
    if (why) throw new CometError('unsupported', why);
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
  },};
