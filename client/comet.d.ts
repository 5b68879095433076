// Types for @comet/client (comet.js).

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
  /** Comet's base URL (default: location.origin). SockJS mode: `<base>/comet` (added when the path is empty). */
  url?: string;
  /**
   * Native mode: transports in fallback order (default ['sse','stream','poll','jsonp']).
   * SockJS mode: sockjs-client transport names (e.g. ['xhr-streaming']).
   */
  transports?: string[];
  /** Channels to subscribe to at once. */
  channels?: string[];
  /** Subscribe token, sent as `token=` on every /v1 subscribe request. */
  token?: string | null;
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
  subscribe(channel: string): this;
  unsubscribe(channel: string): this;
  /** Native mode: `POST /v1/send`; SockJS mode: Jii `channel <ch> <data>`. The channel must match the server's `client_publish`. */
  send(channel: string, data: unknown): Promise<void>;
  /** SockJS mode: Jii action; rejects on error reply, timeout, disconnect. Native mode rejects. */
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
  on(name: string, fn: (...args: any[]) => void): this;
  off(name?: string, fn?: (...args: any[]) => void): this;
}

export default Comet;
