// Types for comet-publisher.js; shapes follow ../../openapi.yaml.

export interface PublishResult {
  channel: string;
  seq: number;
  epoch: string;
  time: number;
  duplicate: boolean;
}

export interface Envelope {
  channel: string;
  seq: number;
  epoch: string;
  data: unknown;
  time: number;
}

export interface HistoryResponse {
  channel: string;
  epoch: string;
  messages: Envelope[];
  cursor: string;
}

export interface ChannelInfo {
  channel: string;
  epoch: string;
  last_seq: number;
  retained_count: number;
  first_seq: number;
}

export interface PublishMessage {
  channel: string;
  data: unknown;
  /** Idempotency key (printable ASCII, no spaces, ≤ 200); generated when absent. */
  id?: string;
}

export class CometError extends Error {
  /** Stable code from openapi.yaml `ErrorCode`, `network_error`, or `http_<status>`. */
  code: string;
  /** HTTP status; 0 when no answer arrived. */
  status: number;
  /** Seconds from the `Retry-After` header, if any. */
  retryAfter?: number;
  /** Attempts made before giving up. */
  attempts?: number;
}

export interface PublisherOptions {
  url: string;
  publishKey?: string;
  retries?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class Publisher {
  constructor(options: PublisherOptions);
  publish(channel: string, data: unknown, options?: { id?: string }): Promise<PublishResult>;
  publishBatch(messages: PublishMessage[]): Promise<{ results: PublishResult[] }>;
  history(channel: string, options?: { since?: number; limit?: number; token?: string }): Promise<HistoryResponse>;
  channel(channel: string, options?: { token?: string }): Promise<ChannelInfo>;
}

export function mintToken(
  secret: string,
  claims: { channels: string[]; ttlSeconds?: number; exp?: number; nbf?: number; sub?: string },
): string;
