// Comet client errors: one Error class with Comet's `code`, and the rules for which errors
// stop the client (fatal) and which are retried. Shared by comet.js, transports.js, sockjs.js.

/** An Error with Comet's `code` (and HTTP `status`, `fatal` when known). */
export class CometError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'CometError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/** Codes that retrying with the same request cannot fix (when no HTTP status says so). */
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

/**
 * Token refusals a fresh token from `getToken` may cure (README "Private channels"); the client
 * asks for one instead of giving up.
 */
export const TOKEN_CODES = new Set(['token_required', 'invalid_token', 'token_expired', 'channel_not_allowed']);

/** A CometError from a server error object `{code, message}`; 4xx (but 408/429) are fatal. */
export function toError(e, status) {
  const code = (e && e.code) || 'error';
  const message = (e && e.message) || code;
  const fatal = status ? status >= 400 && status < 500 && status !== 408 && status !== 429 : FATAL_CODES.has(code);
  return new CometError(code, message, { status: status || undefined, fatal });
}

/** The CometError of a non-2xx response (its JSON `{error}` when there is one). */
export async function httpError(res) {
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

/** Anything thrown by fetch & co. as a CometError (`network` unless it already is one). */
export function toNetError(e) {
  if (e instanceof CometError) return e;
  return new CometError('network', String((e && e.message) || e));
}
