// A recorder around the npm `eventsource` package (the real WHATWG client, not a mock).
import { EventSource } from 'eventsource';

/**
 * Opens `EventSource` on `url` and records what arrives.
 * @param {string} url
 * @param {{lastEventId?: string}} opts  sends `Last-Event-ID` on the first request, as a
 *   browser does on its own reconnects (the package passes headers through a custom fetch).
 */
export function recordEventSource(url, opts = {}) {
  let firstRequest = true;
  const requests = [];
  const es = new EventSource(url, {
    fetch: (input, init) => {
      const headers = { ...(init?.headers ?? {}) };
      if (firstRequest && opts.lastEventId && !headers['Last-Event-ID']) {
        headers['Last-Event-ID'] = opts.lastEventId;
      }
      firstRequest = false;
      requests.push({ url: String(input), lastEventId: headers['Last-Event-ID'] ?? null });
      return fetch(input, { ...init, headers });
    },
  });
  const rec = {
    es,
    requests,
    /** `message` events: {id, envelope} in arrival order. */
    messages: [],
    /** `open` events (the server's, carrying the current cursor). */
    opens: [],
    resets: [],
    errors: [],
    close: () => es.close(),
    /** The `data` values of received messages. */
    data: () => rec.messages.map((m) => m.envelope.data),
    lastId: () => rec.messages.at(-1)?.id,
  };
  es.addEventListener('message', (ev) => {
    rec.messages.push({ id: ev.lastEventId, envelope: JSON.parse(ev.data) });
  });
  // Comet's `event: ready` (positioned, with the current cursor); EventSource's own `open`
  // carries no data and is not recorded.
  es.addEventListener('ready', (ev) => {
    rec.opens.push({ id: ev.lastEventId, data: JSON.parse(ev.data) });
  });
  es.addEventListener('reset', (ev) => {
    rec.resets.push({ id: ev.lastEventId, data: JSON.parse(ev.data) });
  });
  es.addEventListener('error', (ev) => {
    rec.errors.push({ code: ev.code, message: ev.message, readyState: es.readyState });
  });
  return rec;
}
