// React hooks for the Comet client (npm: `comet-push-client/react`). Plain JS, no JSX; React
// (>= 18) is a peer dependency, imported by its bare name, so this entry needs a bundler or
// Node — it is not served under /client/ like comet.js.
//
//   import { Comet } from 'comet-push-client';
//   import { useChannel, useCometState } from 'comet-push-client/react';
//   const comet = new Comet({ url: 'https://push.example.com', autoOpen: true });
//   function Ticker() {
//     const [last, setLast] = useState(null);
//     useChannel(comet, 'ticker', (e) => setLast(e.data));
//     return React.createElement('p', null, `${useCometState(comet)}: ${JSON.stringify(last)}`);
//   }
//
// The client is passed in (no provider): one app usually has one client at module scope, and
// an explicit argument works the same in tests, several clients, or a context of your own.

import React from 'react';

const { useCallback, useEffect, useLayoutEffect, useRef, useSyncExternalStore } = React;

// Layout effects do not run on the server; the handler ref only matters in the browser.
const useIsomorphicLayoutEffect = typeof document !== 'undefined' ? useLayoutEffect : useEffect;

const later = typeof queueMicrotask === 'function' ? queueMicrotask : (fn) => Promise.resolve().then(fn);

/** comet -> Map(channel -> number of mounted useChannel hooks on it). */
const users = new WeakMap();

function acquire(comet, name) {
  let counts = users.get(comet);
  if (!counts) users.set(comet, (counts = new Map()));
  counts.set(name, (counts.get(name) || 0) + 1);
  comet.subscribe(name);
}

/**
 * One user of `name` less; the channel is unsubscribed only when no hook uses it after the
 * current task. StrictMode's mount → unmount → mount (and a component moving in the tree)
 * thus keeps the subscription instead of dropping and re-adding it.
 */
function release(comet, name) {
  const counts = users.get(comet);
  const n = (counts.get(name) || 1) - 1;
  if (n > 0) return counts.set(name, n);
  counts.delete(name);
  later(() => {
    if (!counts.has(name)) comet.unsubscribe(name);
  });
}

/**
 * Subscribes `comet` to channel `name` while the calling component is mounted and calls
 * `handler(event)` for each message (`{channel, data, message, seq, epoch, time}`). The
 * latest `handler` is always used, so an inline arrow function does not resubscribe; only a
 * new `comet` or `name` does. Several components may use the same channel: it stays
 * subscribed until the last one unmounts. A falsy `name` subscribes to nothing. Does not
 * open the client: call `comet.open()` (or pass `autoOpen: true`).
 */
export function useChannel(comet, name, handler) {
  const latest = useRef(handler);
  useIsomorphicLayoutEffect(() => {
    latest.current = handler;
  });
  useEffect(() => {
    if (!comet || !name) return undefined;
    const channel = String(name);
    const listener = (event) => latest.current?.(event);
    comet.on(`channel:${channel}`, listener);
    acquire(comet, channel);
    return () => {
      comet.off(`channel:${channel}`, listener);
      release(comet, channel);
    };
  }, [comet, name]);
}

/** The client's `state` ('connecting' | 'open' | 'closed'), re-rendering when it changes. */
export function useCometState(comet) {
  const subscribe = useCallback(
    (onChange) => {
      comet.on('state', onChange);
      return () => comet.off('state', onChange);
    },
    [comet],
  );
  const read = () => comet.state;
  return useSyncExternalStore(subscribe, read, read);
}
