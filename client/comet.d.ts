// Types for comet-push-client (comet.js). The React hooks: react.d.ts (comet-push-client/react).

export type CometState = 'connecting' | 'open' | 'closed';
export type NativeTransport = 'sse' | 'stream' | 'poll' | 'jsonp';

export interface BackoffOptions {
  /** First reconnect ceiling, ms (default 500). */
  initial?: number;
  /** Largest ceiling, ms (default 30000). */
  max?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
}

export interface CometOptions {
  /** Comet's base URL (default: location.origin; required where there is no location, e.g. Node). SockJS mode: `<base>/comet` (added when the path is empty). */
  url?: string;
  /**
   * Native mode: transports in fallback order (default ['sse','stream','poll','jsonp']).
   * SockJS mode: sockjs-client transport names (e.g. ['xhr-streaming']).
   */
  transports?: string[];
  /** Channels to subscribe to at once. */
  channels?: string[];
  /**
   * A fixed subscribe token: `token=` on every /v1 subscribe request, `Authorization: Bearer`
   * on send()/request(), `subscribe <ch> <token>` in SockJS mode. Prefer getToken for
   * long-lived pages (a fixed token's expiry is fatal).
   */
  token?: string | null;
  /**
   * Asked for a token before subscribing to channels that need one (`private-…`, or any the
   * server answered `token_required` for) and again when the server refuses one
   * (`token_expired`, `invalid_token`, `channel_not_allowed`, 401). Native mode uses one
   * request for all channels, so `channels` is the whole set needing a token and the answer
   * must cover all of them (a JWT `channels` claim may list several, or patterns); SockJS
   * mode asks per channel. Answers are cached per set until refused. null/'' means "no token".
   * Wins over `token` for those channels. Retried at most twice before a connection is ready.
   */
  getToken?: (channels: string[], info: TokenRequest) => string | null | undefined | Promise<string | null | undefined>;
  /**
   * An EventSource constructor for the `sse` transport (e.g. `import { EventSource } from
   * 'eventsource'` in Node). Default: fetch streaming where ReadableStream exists (browsers,
   * Node >= 20), else globalThis.EventSource.
   */
  EventSource?: any;
  /** The fetch to use (default globalThis.fetch), e.g. one with a custom dispatcher in Node. */
  fetch?: typeof fetch;
  /** 'start': channels without a cursor begin at the oldest retained message instead of now. */
  from?: 'start' | null;
  /** Resume from this cursor (e.g. saved from `comet.cursor`). */
  cursor?: string | null;
  /** Long-poll hold time, s (default 25). */
  pollTimeout?: number;
  /** Extra time a poll may take beyond pollTimeout before it counts as dead, ms (default 10000). */
  pollSlack?: number;
  /** No `ready` within this many ms: the transport looks buffered; fall back (default 8000). */
  firstByteTimeout?: number;
  /** No data or heartbeat on a stream for this long: reconnect (default 35000). */
  heartbeatTimeout?: number;
  backoff?: BackoffOptions;
  /** A connection open this long resets the back-off (default 10000 ms). */
  stableAfter?: number;
  /** request() timeout, ms (default 15000). */
  requestTimeout?: number;
  /** Call open() from the constructor (default false). */
  autoOpen?: boolean;
  /** React to `online`, `offline` and `visibilitychange` (default true). */
  watchPage?: boolean;
  /** Random source for the back-off jitter (default Math.random). */
  random?: () => number;
  /** SockJS mode: the sockjs-client constructor (default globalThis.SockJS). */
  SockJS?: any;
  /** SockJS mode: extra options for `new SockJS(url, null, options)`. */
  sockjsOptions?: Record<string, unknown>;
  /** 'native' (default) or 'sockjs'; prefer Comet.sockjs(). */
  mode?: 'native' | 'sockjs';
}

export interface TokenRequest {
  /** Why a token is wanted: 'subscribe', 'send', or the server's refusal code ('token_expired', …). */
  reason: string;
  mode: 'native' | 'sockjs';
}

/** `/v1/send`'s answer (native mode). */
export interface SendResult {
  channel: string;
  seq: number;
  epoch: string;
  time: number;
}

export interface ChannelEvent {
  channel: string;
  data: any;
  /** Same as `data` (Jii-comet's name). */
  message: any;
  /** Native mode only. */
  seq?: number;
  epoch?: string;
  time?: number;
  /** SockJS mode: the payload text as received. */
  raw?: string;
}

export interface ResetEvent {
  channel: string;
  epoch: string;
  /** The first message still available; everything before it was missed. */
  seq: number;
}

export interface OpenEvent { transport: string; attempt: number }
export interface CloseEvent { reason: 'closed' | 'ended' | 'error'; error?: CometError; willReconnect: boolean }
export interface ReconnectingEvent { attempt: number; delay: number; transport: string | null }

export declare class CometError extends Error {
  code: string;
  status?: number;
  fatal?: boolean;
  retryAfter?: number;
  requestUid?: string;
  route?: string;
  command?: string;
  channel?: string;
  /** token_unavailable: what getToken threw. */
  cause?: unknown;
  constructor(code: string, message?: string, extra?: Record<string, unknown>);
}

export declare function backoffDelay(attempt: number, backoff?: BackoffOptions, random?: () => number): number;

export declare class Comet {
  constructor(options?: CometOptions);
  static sockjs(options?: CometOptions): Comet;
  static readonly backoffDelay: typeof backoffDelay;

  readonly options: Required<CometOptions>;
  readonly mode: 'native' | 'sockjs';
  readonly url: string;
  readonly state: CometState;
  /** The transport in use (native name, or sockjs-client's transport). */
  readonly transport: string | null;
  /** Where delivery resumes (native mode). */
  readonly cursor: string | null;
  readonly channels: Set<string>;
  /** Reconnect attempts since the last stable connection. */
  readonly attempt: number;

  open(): this;
  close(): this;
  /**
   * Adds / removes a channel. Native mode reconnects with the whole set once the current task's
   * synchronous code is done, so several calls in one task open one request.
   */
  subscribe(channel: string): this;
  unsubscribe(channel: string): this;
  /**
   * Publishes from the client; the channel must match the server's `client_publish`. Native
   * mode: `POST /v1/send`, resolves with its `{channel, seq, epoch, time}`, rejects with the
   * CometError (also emitted as `error`). SockJS mode: Jii `channel <ch> <data>`, resolves with
   * undefined once queued; a refusal arrives as an `error` event.
   */
  send(channel: string, data: unknown): Promise<SendResult | undefined>;
  /**
   * Calls a server action (routes matching `client_actions`); resolves with its answer,
   * rejects with a CometError (`action_failed`, `action_timeout`, `action_not_found`, …,
   * `timeout` after opts.timeout / requestTimeout ms, `disconnected`, `closed`, `network`).
   * Native mode: `POST /v1/action/{route}` (works without open()); SockJS mode: Jii
   * `action <route> <json>` with a `requestUid`.
   */
  request<T = any>(route: string, data?: Record<string, unknown>, opts?: { timeout?: number }): Promise<T>;

  on(name: 'channel', fn: (e: ChannelEvent) => void): this;
  on(name: `channel:${string}`, fn: (e: ChannelEvent) => void): this;
  on(name: 'open', fn: (e: OpenEvent) => void): this;
  on(name: 'close', fn: (e: CloseEvent) => void): this;
  on(name: 'reset', fn: (e: ResetEvent) => void): this;
  on(name: 'error', fn: (e: CometError) => void): this;
  on(name: 'state', fn: (state: CometState) => void): this;
  on(name: 'connecting', fn: (e: { transport: string; attempt: number }) => void): this;
  on(name: 'reconnecting', fn: (e: ReconnectingEvent) => void): this;
  on(name: 'duplicate', fn: (envelope: any) => void): this;
  on(name: 'message', fn: (text: string) => void): this;
  /** getToken is about to be called. */
  on(name: 'token', fn: (e: { channels: string[]; reason: string }) => void): this;
  /** A configured transport cannot run here (jsonp without a DOM, …); it is left out. */
  on(name: 'skip', fn: (e: { transport: string; reason: string }) => void): this;
  on(name: string, fn: (...args: any[]) => void): this;
  off(name?: string, fn?: (...args: any[]) => void): this;
}

export default Comet;
