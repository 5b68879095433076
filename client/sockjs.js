// SockJS mode (Jii-comet protocol over sockjs-client against `<url>/comet`), mixed into
// Comet.prototype by comet.js. One SockJS session carries every channel; `subscribe <ch>
// [<token>]` is sent per channel on every (re)connect, as Jii has no cursor to resume from.

import { CometError, TOKEN_CODES } from './errors.js';
import { TRANSPORTS } from './transports.js';

export const sockjsMethods = {
  /**
   * Sends `subscribe <ch> [<token>]` on the open session `ctl` (default: the live one). The
   * token comes from `getToken([ch])` when the channel needs one (README "Tokens"), else
   * options.token; a session that closed or a channel dropped meanwhile sends nothing.
   */
  _sockSubscribe(ch, ctl = this._conn, reason = 'subscribe') {
    if (!ctl || !ctl.sock || !ctl.ready) return; // the next onopen subscribes everything
    const send = (token) => {
      if (this._conn !== ctl || !this.channels.has(ch)) return;
      ctl.sock.send(token ? `subscribe ${ch} ${token}` : `subscribe ${ch}`);
    };
    if (!this._usesGetToken([ch])) return send(this.options.token);
    this._tokenFor([ch], reason).then(send, (err) => {
      if (this._conn === ctl) this._emit('error', err);
    });
  },

  /**
   * A refused `subscribe` (or a subscription ended by its token's expiry): with getToken, ask
   * for a fresh token and subscribe again, at most twice per channel within `stableAfter`
   * without a message on it in between.
   * Returns false when the error is not handled here (the caller emits it as is).
   */
  _sockTokenError(obj) {
    if (obj.command !== 'subscribe' || !TOKEN_CODES.has(obj.code) || typeof this.options.getToken !== 'function') return false;
    // The server names the channel in the message text: `… channel "x" …`, `the token for x expired`.
    const m = /channel "((?:[^"\\]|\\.)+)"/.exec(obj.message || '') || /token for (\S+) expired/.exec(obj.message || '');
    const named = obj.channel || (m && m[1]);
    let channels;
    if (named) {
      if (!this.channels.has(named)) return true; // unsubscribed meanwhile: nothing to renew
      if (obj.code === 'token_required') this._learnedPrivate.add(named);
      channels = [named];
    } else {
      channels = [...this.channels].filter((ch) => this._needsToken(ch));
      if (!channels.length) channels = [...this.channels];
    }
    const now = Date.now();
    const err = new CometError(obj.code, obj.message || obj.code, { command: obj.command, fatal: false });
    this._emit('error', err);
    for (const ch of channels) {
      const r = this._sockRetries.get(ch);
      const n = r && now - r.t < this.options.stableAfter ? r.n + 1 : 1;
      this._sockRetries.set(ch, { n, t: now });
      if (n > 2) {
        this._emit('error', new CometError(obj.code, `${ch}: still refused after ${n - 1} fresh tokens (${obj.message || obj.code})`, { command: 'subscribe', channel: ch }));
        continue;
      }
      this._forgetToken([ch]);
      this._sockSubscribe(ch, this._conn, obj.code);
    }
    return true;
  },

  _sockUrl() {
    const u = new URL(this.url, typeof location !== 'undefined' ? location.href : undefined);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/comet';
    return u.toString().replace(/\/+$/, '');
  },

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
      for (const ch of this.channels) this._sockSubscribe(ch, ctl);
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
  },

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
  },

  _command(cmd) {
    const ctl = this._conn;
    if (this.state === 'open' && ctl && ctl.sock) ctl.sock.send(cmd);
    else this._outbox.push(cmd);
  },

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
      this._sockRetries.delete(channel); // a push proves the subscription (and its token) works
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
      if (this._sockTokenError(obj)) return;
      this._emit('error', new CometError(obj.code || 'error', obj.message || rest, { command: obj.command }));
    } else {
      this._emit('message', text);
    }
  },
};
