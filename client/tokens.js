// Subscribe tokens for private channels, mixed into Comet.prototype by comet.js.
//
// With options.getToken the client asks the application for tokens instead of holding one
// fixed token: before subscribing to channels that need one (`private-…`, or any channel the
// server answered `token_required` for) and again when the server refuses a token
// (`token_expired`, `invalid_token`, `channel_not_allowed`, a bare 401). Native mode sends one
// request for all channels with one `token=`, so getToken gets the whole set of channels that
// need a token and must answer one token whose `channels` claim covers them all; SockJS mode
// subscribes channel by channel and asks per channel. Answers are cached per channel set.

import { CometError, TOKEN_CODES } from './errors.js';

export const tokenMethods = {
  /** Whether `ch` needs a subscribe token: `private-…`, or the server said so. */
  _needsToken(ch) {
    return this._tokenForAll || ch.startsWith('private-') || this._learnedPrivate.has(ch);
  },

  /** Whether getToken is set and any of `channels` needs a token. */
  _usesGetToken(channels) {
    return typeof this.options.getToken === 'function' && channels.some((ch) => this._needsToken(ch));
  },

  /**
   * The token for `channels` (sorted, de-duplicated): one getToken call per set until
   * _forgetToken; resolves null for "no token". Rejects with `token_unavailable`.
   */
  _tokenFor(channels, reason) {
    const list = [...new Set(channels)].sort();
    const key = list.join('\n');
    let p = this._tokens.get(key);
    if (!p) {
      this._emit('token', { channels: list, reason });
      p = Promise.resolve()
        .then(() => this.options.getToken(list, { reason, mode: this.mode }))
        .then(
          (t) => (t == null || t === '' ? null : String(t)),
          (e) => {
            if (this._tokens.get(key) === p) this._tokens.delete(key); // ask again next time
            throw new CometError('token_unavailable', `getToken failed: ${(e && e.message) || e}`, { cause: e });
          },
        );
      this._tokens.set(key, p);
      // Channel sets come and go: keep the newest few answers, not every set ever used.
      if (this._tokens.size > 32) this._tokens.delete(this._tokens.keys().next().value);
    }
    return p;
  },

  _forgetToken(channels) {
    if (!channels) this._tokens.clear();
    else this._tokens.delete([...new Set(channels)].sort().join('\n'));
  },

  /**
   * Native mode, a token refusal: with getToken, learn which channel is private (from the
   * message), drop the cached tokens and reconnect with a fresh one — at most twice before a
   * connection reaches `ready` again, so a getToken that keeps answering stale tokens ends in
   * the usual fatal error instead of a loop.
   */
  _refreshToken(err) {
    if (typeof this.options.getToken !== 'function' || this._tokenRetries >= 2) return false;
    if (!TOKEN_CODES.has(err.code) && err.status !== 401) return false;
    if (err.code === 'token_required' || err.code === 'channel_not_allowed') {
      const m = /channel "((?:[^"\\]|\\.)+)"/.exec(err.message || '');
      if (m && this.channels.has(m[1])) this._learnedPrivate.add(m[1]);
      else if (err.code === 'token_required') this._tokenForAll = true;
    }
    this._tokenRetries++;
    this._tokenReason = err.code;
    this._forgetToken();
    err.fatal = false;
    return true;
  },
};
