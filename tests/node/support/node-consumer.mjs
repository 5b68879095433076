// A Node program that uses the installed npm package `comet-push-client` the way an
// application would (copied into a fresh project by package.test.mjs). It prints one JSON
// line per thing that happens and exits after COUNT messages (or 1 on a fatal error / after
// 20 s). Env: COMET_URL, CHANNEL, COUNT, OPTS (JSON client options), EVENTSOURCE (path of npm
// `eventsource`, to pass as options.EventSource).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import { Comet } from 'comet-push-client';

const print = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const require = createRequire(import.meta.url);
print({ version: require('comet-push-client/package.json').version, resolved: import.meta.resolve('comet-push-client') });

// The React entry is separate: without `react` installed, only it fails, and on `react`.
try {
  await import('comet-push-client/react');
  print({ react: 'loaded' });
} catch (e) {
  print({ react: e.code, message: String(e.message).split('\n')[0] });
}

const opts = JSON.parse(process.env.OPTS || '{}');
if (process.env.EVENTSOURCE) {
  const { EventSource } = await import(pathToFileURL(process.env.EVENTSOURCE).href);
  opts.EventSource = class CountingEventSource extends EventSource {
    constructor(url, init) {
      super(url, init);
      print({ eventsource: String(url) });
    }
  };
}
const count = Number(process.env.COUNT || 1);
const comet = new Comet({ url: process.env.COMET_URL, ...opts });
let got = 0;
comet.on('skip', (e) => print({ skip: e.transport, reason: e.reason }));
comet.on('open', (e) => print({ open: e.transport }));
comet.on('error', (e) => {
  print({ error: e.code, fatal: !!e.fatal, message: e.message });
  if (e.fatal) process.exit(1);
});
comet.on('channel', (e) => {
  print({ msg: e.data.n, seq: e.seq, channel: e.channel });
  if (++got >= count) {
    comet.close();
    print({ done: got });
    process.exit(0);
  }
});
comet.subscribe(process.env.CHANNEL);
comet.open();
setTimeout(() => {
  print({ timeout: got });
  process.exit(1);
}, 20000).unref();
