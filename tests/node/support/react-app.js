// A small React app using comet-push-client/react, bundled by esbuild for react.test.mjs and
// package.test.mjs. Query: ?url=<comet>&feeds=id:channel,id:channel[&transports=sse].
// Controls for the tests: window.app.mount(id, channel) / unmount(id) / relabel(id, label);
// window.calls[id] lists what each feed's handler was called with ("label:n").
import { StrictMode, createElement as h, useState } from 'react';
import { flushSync } from 'react-dom';
import { createRoot } from 'react-dom/client';

import { Comet } from 'comet-push-client';
import { useChannel, useCometState } from 'comet-push-client/react';

const params = new URLSearchParams(location.search);
const comet = new Comet({
  url: params.get('url'),
  transports: (params.get('transports') || 'sse').split(','),
  heartbeatTimeout: 5000,
  autoOpen: true,
});
window.comet = comet;
window.calls = {};
window.errors = [];
comet.on('error', (e) => window.errors.push({ code: e.code, message: e.message, fatal: !!e.fatal }));

const initial = (params.get('feeds') || '')
  .split(',')
  .filter(Boolean)
  .map((f) => ({ id: f.split(':')[0], channel: f.split(':')[1], label: 'v1' }));

function Feed({ id, channel, label }) {
  const [items, setItems] = useState([]);
  // A new arrow function every render: the hook must call the latest one without resubscribing.
  useChannel(comet, channel, (e) => {
    const text = `${label}:${e.data.n}`;
    (window.calls[id] ||= []).push(text);
    setItems((xs) => [...xs, text]);
  });
  return h('section', { id: `feed-${id}` }, h('b', null, `${id} (${channel})`), h('ol', null, items.map((t, i) => h('li', { key: i }, t))));
}

function App() {
  const [feeds, setFeeds] = useState(initial);
  const state = useCometState(comet);
  window.app = {
    mount: (id, channel) => flushSync(() => setFeeds((fs) => [...fs, { id, channel, label: 'v1' }])),
    unmount: (id) => flushSync(() => setFeeds((fs) => fs.filter((f) => f.id !== id))),
    relabel: (id, label) => flushSync(() => setFeeds((fs) => fs.map((f) => (f.id === id ? { ...f, label } : f)))),
  };
  return h('main', null, h('p', { id: 'state' }, state), ...feeds.map((f) => h(Feed, { key: f.id, ...f })));
}

createRoot(document.getElementById('root')).render(h(StrictMode, null, h(App)));
window.appReady = true;
