// Types for comet-push-client/react (react.js). React >= 18 is a peer dependency.

import type { ChannelEvent, Comet, CometState } from './comet.js';

/**
 * Subscribes `comet` to `name` while the component is mounted and calls the latest `handler`
 * for each message; a new handler does not resubscribe, a new `comet` or `name` does. The
 * channel stays subscribed while any component uses it (StrictMode's double mount included).
 * A falsy `name` subscribes to nothing. Does not call `comet.open()`.
 */
export declare function useChannel(
  comet: Comet | null | undefined,
  name: string | null | undefined,
  handler: (event: ChannelEvent) => void,
): void;

/** `comet.state`, re-rendering the component when it changes. */
export declare function useCometState(comet: Comet): CometState;
