// Comet chaos driver (issue 8). Run by run.sh, which creates the namespace and the veth pair.
//
//   root namespace (this process, every client)      namespace $CHAOS_NS
//   clients -> fault proxy 127.0.0.1:<eph> ----veth----> fwd 10.213.0.2:<port> -> runner 127.0.0.1:<eph>
//                                                        (nft loss/cuts + tc tbf on the veth)
//
// Every loop is bounded by a count and a deadline; every scenario prints one `chaos <name>:`
// line and the process exits 1 on any loss, duplicate, reordering or undesigned error response.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const nodeRequire = createRequire(path.join(ROOT, 'tests', 'node', 'package.json'));
const { EventSource } = await import(
  path.join(ROOT, 'tests', 'node', 'node_modules', 'eventsource', 'dist', 'index.js')
);
const SockJS = nodeRequire('sockjs-client');

const MODE = process.argv[2] ?? 'short';
const NS = must('CHAOS_NS');
const VETH_NS = must('CHAOS_VETH_NS');
const NS_IP = must('CHAOS_NS_IP');
const TMP = must('CHAOS_TMP');
const COMET_BIN = must('COMET_BIN');
const MANIFEST = path.join(ROOT, 'spin.toml');
const KEY = 'chaos-publish-key';
const LONG = MODE === 'long';
const ONLY = process.env.CHAOS_ONLY ? process.env.CHAOS_ONLY.split(',') : null;

function must(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`driver: ${name} not set (run tests/chaos/run.sh)`);
    process.exit(2);
  }
  return v;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const rand = (a, b) => a + Math.random() * (b - a);

// ---------------------------------------------------------------------------------------------
// Namespace plumbing: nft / tc inside the namespace.

function nsExec(...args) {
  return execFileSync('ip', ['netns', 'exec', NS, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const impair = {
  lossPct: 0,
  cut: false,
  apply() {
    nsExec('nft', 'flush', 'chain', 'inet', 'chaos', 'impair');
    if (this.cut) nsExec('nft', 'add', 'rule', 'inet', 'chaos', 'impair', 'drop');
    else if (this.lossPct > 0) {
      // `numgen random mod 100 < N drop`: N % of the packets, each direction.
      nsExec('nft', 'add', 'rule', 'inet', 'chaos', 'impair', 'numgen', 'random', 'mod', '100',
        '<', String(this.lossPct), 'drop');
    }
  },
  loss(pct) { this.lossPct = pct; this.apply(); },
  setCut(on) { this.cut = on; this.apply(); },
  bandwidth(rate) {
    try { nsExec('tc', 'qdisc', 'del', 'dev', VETH_NS, 'root'); } catch { /* none yet */ }
    if (rate) {
      nsExec('tc', 'qdisc', 'add', 'dev', VETH_NS, 'root', 'tbf', 'rate', rate, 'burst', '32kbit',
        'latency', '500ms');
    }
  },
  clear() { this.lossPct = 0; this.cut = false; this.apply(); this.bandwidth(null); },
};

// ---------------------------------------------------------------------------------------------
// Processes inside the namespace: runner, forwarders, Redis. Each is tracked by pid.

const children = new Set();
process.on('exit', () => { for (const c of children) try { c.kill('SIGKILL'); } catch { /* gone */ } });

function spawnNs(cmd, args, env = {}) {
  // `ip netns exec` execs the command: the child's pid is the command's pid.
  const child = spawn('ip', ['netns', 'exec', NS, cmd, ...args], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.tail = [];
  const keep = (d) => { for (const l of d.toString().split('\n')) if (l) { child.tail.push(l); if (child.tail.length > 60) child.tail.shift(); } };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return child;
}
function waitOutput(child, re, ms, what) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`${what}: no ${re} within ${ms} ms\n${child.tail.join('\n')}`)), ms);
    child.stdout.on('data', (d) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) { clearTimeout(t); resolve(m); }
    });
    child.once('exit', (code, sig) => { clearTimeout(t); reject(new Error(`${what} exited (${code ?? sig})\n${child.tail.join('\n')}`)); });
  });
}
async function killChild(child, sig = 'SIGKILL') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill(sig);
  await Promise.race([done, sleep(5000)]);
}

async function startFwd(port, target) {
  const f = spawnNs(process.execPath, [path.join(here, 'fwd.mjs'), NS_IP, String(port), '127.0.0.1', String(target)]);
  await waitOutput(f, /forwarding/, 10000, `forwarder :${port}`);
  return f;
}

const baseEnv = {
  RUST_LOG: 'warn',
  SPIN_VARIABLE_PUBLISH_KEY: KEY,
  SPIN_VARIABLE_HEARTBEAT_SECONDS: '1',
  SPIN_VARIABLE_MAX_STREAM_SECONDS: '20',
  SPIN_VARIABLE_SOCKJS_HEARTBEAT_SECONDS: '2',
  SPIN_VARIABLE_RETENTION_COUNT: '10000',
};

/** A runner in the namespace on 127.0.0.1, reachable from here at NS_IP:port (admin port+1). */
class Runner {
  constructor(name, { port, env = {}, stateDir }) {
    this.name = name; this.port = port; this.env = env;
    this.stateDir = stateDir ?? path.join(TMP, `state-${name}`);
    mkdirSync(this.stateDir, { recursive: true });
    this.url = `http://${NS_IP}:${port}`;
    this.adminUrl = `http://${NS_IP}:${port + 1}`;
  }
  async start() {
    this.proc = spawnNs(COMET_BIN, ['up', '-f', MANIFEST, '--listen', '127.0.0.1:0', '--admin-listen',
      '127.0.0.1:0', '--state-dir', this.stateDir], { ...baseEnv, ...this.env });
    const m = await waitOutput(this.proc, /Serving http:\/\/127\.0\.0\.1:(\d+)[\s\S]*Admin http:\/\/127\.0\.0\.1:(\d+)/, 30000, `runner ${this.name}`);
    this.pid = this.proc.pid;
    this.fwd = await startFwd(this.port, m[1]);
    this.fwdAdmin = await startFwd(this.port + 1, m[2]);
  }
  async kill9() {
    await killChild(this.proc, 'SIGKILL');
    await killChild(this.fwd); await killChild(this.fwdAdmin);
  }
  async stop() {
    await killChild(this.proc, 'SIGTERM');
    await killChild(this.proc, 'SIGKILL');
    await killChild(this.fwd); await killChild(this.fwdAdmin);
  }
  rssKb() {
    try { return Number(readFileSync(`/proc/${this.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]); } catch { return NaN; }
  }
}

// ---------------------------------------------------------------------------------------------
// The fault-injecting TCP proxy (root namespace, 127.0.0.1): latency + jitter per chunk (order
// kept), slicing, stalls of single connections, and TCP resets.

class FaultProxy {
  constructor(targetHost, targetPort) {
    this.target = { host: targetHost, port: targetPort };
    this.faults = { latency: 0, jitter: 0, slice: 0 };
    this.conns = new Set();
    this.stats = { conns: 0, resets: 0, stalls: 0 };
    this.timers = [];
  }
  async listen() {
    this.server = net.createServer((c) => this.#accept(c));
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }
  #accept(client) {
    this.stats.conns++;
    const up = net.connect(this.target);
    const conn = { client, up, stallUntil: 0 };
    this.conns.add(conn);
    const kill = () => { client.destroy(); up.destroy(); this.conns.delete(conn); };
    for (const s of [client, up]) { s.on('error', kill); s.on('close', kill); s.setNoDelay(true); }
    this.#pipe(client, up, conn);
    this.#pipe(up, client, conn);
  }
  #pipe(src, dst, conn) {
    const queue = [];
    let timer = null;
    const pump = () => {
      timer = null;
      while (queue.length && queue[0].at <= Date.now()) {
        const item = queue.shift();
        if (dst.destroyed) return;
        if (item.end) { dst.end(); return; }
        for (const p of item.pieces) dst.write(p);
      }
      if (queue.length) timer = setTimeout(pump, Math.max(1, queue[0].at - Date.now()));
    };
    let last = 0;
    const push = (item) => {
      const f = this.faults;
      let at = Date.now() + Math.max(0, f.latency + rand(-f.jitter, f.jitter));
      at = Math.max(at, conn.stallUntil, last);
      last = at; item.at = at;
      queue.push(item);
      if (!timer) timer = setTimeout(pump, Math.max(1, queue[0].at - Date.now()));
    };
    src.on('data', (buf) => {
      const pieces = [];
      const n = this.faults.slice;
      if (n > 0) for (let i = 0; i < buf.length; i += n) pieces.push(buf.subarray(i, i + n));
      else pieces.push(buf);
      push({ pieces });
    });
    src.on('end', () => push({ end: true }));
  }
  /** Every `everyMs`, stall one random connection for 1–3 s. */
  stalls(everyMs) {
    this.timers.push(setInterval(() => {
      const c = [...this.conns][Math.floor(Math.random() * this.conns.size)];
      if (c) { c.stallUntil = Date.now() + rand(1000, 3000); this.stats.stalls++; }
    }, everyMs));
  }
  /** Every `everyMs`, reset (RST) one random connection. */
  resets(everyMs) {
    this.timers.push(setInterval(() => {
      const c = [...this.conns][Math.floor(Math.random() * this.conns.size)];
      if (c) {
        this.stats.resets++;
        try { c.client.resetAndDestroy(); } catch { c.client.destroy(); }
        try { c.up.resetAndDestroy(); } catch { c.up.destroy(); }
      }
    }, everyMs));
  }
  calm() { for (const t of this.timers) clearInterval(t); this.timers = []; this.faults = { latency: 0, jitter: 0, slice: 0 }; }
  async close() {
    this.calm();
    for (const c of this.conns) { c.client.destroy(); c.up.destroy(); }
    await new Promise((r) => this.server.close(r));
  }
}

// ---------------------------------------------------------------------------------------------
// Error accounting: every non-200 answer is recorded; a scenario says which ones are designed.

class Errors {
  constructor() { this.list = []; }
  add(where, status, body, headers) {
    let code = null;
    try { code = JSON.parse(body).error?.code ?? null; } catch { /* not JSON */ }
    this.list.push({ where, status, code, retryAfter: headers?.get?.('retry-after') ?? null, body: String(body).slice(0, 200) });
  }
  undesigned(designed) { return this.list.filter((e) => !designed(e)); }
}

// ---------------------------------------------------------------------------------------------
// Publisher: numbered messages `{n}` with idempotency ids, in batches, retried until
// acknowledged (bounded). Only acknowledged numbers count as published.

class Publisher {
  constructor({ urls, channel, scenario, errors, batch = 5, intervalMs = 100 }) {
    Object.assign(this, { urls, channel, scenario, errors, batch, intervalMs });
    this.acked = new Set(); this.next = 1; this.attempts = 0; this.failures = 0; this.which = 0;
  }
  async publishBatch(ns, deadline) {
    const body = ns.map((n) => ({ channel: this.channel, data: { n }, id: `${this.scenario}-${this.channel}-${n}` }));
    while (Date.now() < deadline) {
      const url = this.urls[this.which++ % this.urls.length];
      this.attempts++;
      try {
        const res = await fetch(`${url}/v1/publish`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(8000),
        });
        const text = await res.text();
        if (res.status === 200) {
          const results = JSON.parse(text).results;
          if (results.length !== ns.length) throw new Error(`publish: ${results.length} results for ${ns.length}`);
          for (const n of ns) this.acked.add(n);
          return true;
        }
        this.errors.add(`publish ${url}`, res.status, text, res.headers);
      } catch { /* network fault: retry with the same ids */ }
      this.failures++;
      await sleep(250);
    }
    return false;
  }
  /** Publishes until `untilMs` (or `maxCount` numbers), each batch retried until acked. */
  async run({ untilMs, maxCount, retryDeadlineMs = 45000 }) {
    while (Date.now() < untilMs && this.next <= maxCount) {
      const ns = [];
      while (ns.length < this.batch && this.next <= maxCount) ns.push(this.next++);
      const ok = await this.publishBatch(ns, Date.now() + retryDeadlineMs);
      if (!ok) { log(`publisher ${this.channel}: batch ${ns[0]}.. never acknowledged`); return; }
      await sleep(this.intervalMs);
    }
  }
  get count() { return this.acked.size; }
}

// ---------------------------------------------------------------------------------------------
// Subscribers. Each records `events`: {n, seq, epoch} for messages and {reset} for resets, and
// resumes by cursor after any failure. They stop when told to (stop()) or at their deadline.

class Sub {
  constructor(kind, url, channel, errors) {
    Object.assign(this, { kind, url, channel, errors });
    this.events = []; this.reconnects = 0; this.stopped = false; this.cursor = null;
    this.controller = null;
  }
  get name() { return this.kind; }
  onEvent(ev) {
    if (ev.type === 'reset') { this.events.push({ reset: ev }); return; }
    if (ev.seq !== undefined && ev.data && typeof ev.data.n === 'number') {
      this.events.push({ n: ev.data.n, seq: ev.seq, epoch: ev.epoch });
    }
  }
  ns() { return this.events.filter((e) => e.n !== undefined).map((e) => e.n); }
  stop() { this.stopped = true; this.controller?.abort(); this.close?.(); }
  query() {
    const q = new URLSearchParams({ channel: this.channel });
    if (this.cursor) q.set('cursor', this.cursor); else q.set('from', 'start');
    return q;
  }
}

class StreamSub extends Sub {
  constructor(...a) { super('stream', ...a); }
  async run(deadline) {
    while (!this.stopped && Date.now() < deadline) {
      this.controller = new AbortController();
      let watchdog;
      const pet = () => { clearTimeout(watchdog); watchdog = setTimeout(() => this.controller.abort(), 8000); };
      try {
        pet();
        const res = await fetch(`${this.url}/v1/stream?${this.query()}`, { signal: this.controller.signal });
        if (res.status !== 200) { this.errors.add(`stream`, res.status, await res.text(), res.headers); await sleep(500); continue; }
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          pet();
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i); buf = buf.slice(i + 1);
            if (!line.trim()) continue;
            const ev = JSON.parse(line);
            this.onEvent(ev);
            if (ev.cursor) this.cursor = ev.cursor;
          }
        }
      } catch { /* fault or watchdog: resume from the cursor */ }
      clearTimeout(watchdog);
      if (!this.stopped) { this.reconnects++; await sleep(200); }
    }
  }
}

class PollSub extends Sub {
  constructor(url, channel, errors, { jsonp = false } = {}) {
    super(jsonp ? 'jsonp' : 'long-poll', url, channel, errors);
    this.jsonp = jsonp;
  }
  async run(deadline) {
    while (!this.stopped && Date.now() < deadline) {
      this.controller = new AbortController();
      const q = this.query();
      q.set('timeout', '5');
      if (this.jsonp) q.set('callback', 'chaos.cb');
      const t = setTimeout(() => this.controller.abort(), 20000);
      try {
        const res = await fetch(`${this.url}/v1/poll?${q}`, { signal: this.controller.signal });
        const text = await res.text();
        if (res.status !== 200) { this.errors.add(this.kind, res.status, text, res.headers); await sleep(500); continue; }
        let body;
        if (this.jsonp) {
          const calls = [];
          vm.runInNewContext(text, vm.createContext({ chaos: { cb: (x) => calls.push(x) } }), { timeout: 1000 });
          if (calls.length !== 1) throw new Error(`jsonp: ${calls.length} callback calls`);
          body = calls[0];
          if (body.error) { this.errors.add('jsonp(200)', 599, JSON.stringify(body)); await sleep(500); continue; }
        } else body = JSON.parse(text);
        for (const ev of body.messages) this.onEvent(ev);
        this.cursor = body.cursor;
      } catch { if (!this.stopped) { this.reconnects++; await sleep(200); } }
      clearTimeout(t);
    }
  }
}

class SseSub extends Sub {
  constructor(...a) { super('sse', ...a); }
  async run(deadline) {
    // The npm EventSource reconnects by itself with Last-Event-ID; when it gives up (a non-200
    // answer closes it for good) a new one resumes from the last id with `lastEventId=`.
    let lastId = null;
    while (!this.stopped && Date.now() < deadline) {
      const q = new URLSearchParams({ channel: this.channel, from: 'start' });
      if (lastId) q.set('lastEventId', lastId);
      const errors = this.errors;
      const es = new EventSource(`${this.url}/v1/sse?${q}`, {
        fetch: async (input, init) => {
          const res = await fetch(input, init);
          if (res.status !== 200) {
            const text = await res.clone().text().catch(() => '');
            errors.add('sse', res.status, text, res.headers);
          }
          return res;
        },
      });
      this.close = () => es.close();
      es.addEventListener('message', (ev) => { lastId = ev.lastEventId; this.onEvent(JSON.parse(ev.data)); });
      es.addEventListener('reset', (ev) => { lastId = ev.lastEventId || lastId; this.onEvent(JSON.parse(ev.data)); });
      es.addEventListener('ready', (ev) => { lastId = ev.lastEventId || lastId; });
      es.addEventListener('error', () => { if (!this.stopped) this.reconnects++; });
      while (!this.stopped && Date.now() < deadline && es.readyState !== 2) await sleep(100);
      es.close();
      if (!this.stopped) await sleep(500);
    }
  }
}

/** sockjs-client in Node, one transport forced; a closed session is replaced by a new one. */
class SockjsSub extends Sub {
  constructor(transport, url, channel, errors) {
    super(`sockjs-${transport}`, url, channel, errors);
    this.transport = transport; this.sessions = []; this.probed = false; this.closes = [];
  }
  async run(deadline) {
    while (!this.stopped && Date.now() < deadline) {
      const session = [];
      this.sessions.push(session);
      const sock = new SockJS(`${this.url}/comet`, null, { transports: [this.transport], timeout: 20000 });
      this.close = () => sock.close();
      let closed = false;
      sock.onopen = () => sock.send(`subscribe ${this.channel}`);
      sock.onmessage = (e) => {
        const prefix = `channel ${this.channel} `;
        if (typeof e.data !== 'string' || !e.data.startsWith(prefix)) return;
        const data = JSON.parse(e.data.slice(prefix.length));
        if (data.probe !== undefined) { this.probed = true; return; }
        if (typeof data.n === 'number') { session.push(data.n); this.events.push({ n: data.n }); }
      };
      sock.onclose = (e) => { closed = true; this.closes.push(`${e.code}`); };
      while (!closed && !this.stopped && Date.now() < deadline) await sleep(100);
      if (!closed) sock.close();
      if (!this.stopped) { this.reconnects++; await sleep(500); }
    }
  }
}

/** The browser client (client/comet.js, default transport order) in headless Chromium. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const BROWSER = process.env.CHAOS_BROWSER !== '0' && existsSync(CHROMIUM);
class BrowserSub extends Sub {
  constructor(...a) { super('browser', ...a); this.pageErrors = []; }
  async run(deadline) {
    const { chromium } = nodeRequire('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
    });
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => this.pageErrors.push(String(e)));
      // Any same-origin document will do; the client is imported from the runner.
      // Loading the page crosses the impaired path too: bounded retries.
      for (let attempt = 1; ; attempt++) {
        try {
          await page.goto(`${this.url}/v1/channels/${this.channel}`, { timeout: 30000 });
          await page.evaluate(() => import('/client/comet.js'));
          break;
        } catch (e) {
          if (attempt >= 5 || this.stopped || Date.now() > deadline) throw e;
          await sleep(1000);
        }
      }
      await page.evaluate(async (ch) => {
        const { Comet } = await import('/client/comet.js');
        const out = (window.__chaos = { events: [], transports: [], errors: [] });
        const c = new Comet({ url: location.origin, channels: [ch], from: 'start', heartbeatTimeout: 10000 });
        c.on(`channel:${ch}`, (e) => out.events.push({ n: e.data?.n, seq: e.seq, epoch: e.epoch }));
        c.on('reset', (e) => out.events.push({ reset: e }));
        c.on('open', (e) => out.transports.push(e.transport));
        c.on('error', (e) => out.errors.push(`${e.code}:${e.status ?? ''}`));
        window.__chaosClient = c;
        c.open();
      }, this.channel);
      let taken = 0;
      while (!this.stopped && Date.now() < deadline) {
        const got = await page.evaluate((from) => {
          const o = window.__chaos;
          return { events: o.events.slice(from), transports: o.transports, errors: o.errors };
        }, taken).catch(() => null);
        if (got) {
          taken += got.events.length;
          for (const e of got.events) if (e.reset || typeof e.n === 'number') this.events.push(e);
          this.transports = got.transports; this.clientErrors = got.errors;
          this.reconnects = Math.max(0, got.transports.length - 1);
        }
        await sleep(500);
      }
      await page.evaluate(() => window.__chaosClient?.close()).catch(() => {});
    } finally {
      await browser.close().catch(() => {});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Verdicts.

/** Exactly `1..N` once each, in order (native transports, which resume by cursor). */
function checkExact(sub, published) {
  const ns = sub.ns();
  const seen = new Set();
  let dup = 0, disorder = 0, prev = 0;
  for (const n of ns) {
    if (seen.has(n)) dup++; else seen.add(n);
    if (n <= prev) disorder++;
    prev = Math.max(prev, n);
  }
  let lost = 0;
  for (const n of published) if (!seen.has(n)) lost++;
  const resets = sub.events.filter((e) => e.reset).length;
  return { name: sub.name, delivered: ns.length, lost, dup, disorder, resets, reconnects: sub.reconnects };
}

/** SockJS: exactly once and in order within each session; gaps between sessions are designed. */
function checkSockjs(sub, published) {
  const seen = new Set();
  let dup = 0, disorder = 0, innerGap = 0, acrossGap = 0, prevEnd = 0;
  const first = sub.sessions.find((s) => s.length)?.[0];
  for (const s of sub.sessions) {
    for (let i = 0; i < s.length; i++) {
      if (seen.has(s[i])) dup++; else seen.add(s[i]);
      if (i > 0 && s[i] <= s[i - 1]) disorder++;
      if (i > 0 && s[i] > s[i - 1] + 1) innerGap += s[i] - s[i - 1] - 1;
    }
    if (s.length) { if (s[0] > prevEnd + 1 && prevEnd > 0) acrossGap += s[0] - prevEnd - 1; prevEnd = Math.max(prevEnd, s.at(-1)); }
  }
  const max = Math.max(0, ...published);
  // Before the first message / after the last one: a loss if it happened inside one session,
  // designed if a session boundary lies there (the new session subscribed "from now").
  const nonEmpty = sub.sessions.map((s, i) => (s.length ? i : -1)).filter((i) => i >= 0);
  let tail = max - prevEnd;
  let head = (first ?? max + 1) - 1;
  if (nonEmpty.length === 0) head = 0;
  else if (nonEmpty[0] > 0) { acrossGap += head; head = 0; }
  if (nonEmpty.length && nonEmpty.at(-1) < sub.sessions.length - 1) { acrossGap += tail; tail = 0; }
  const detail = sub.sessions.map((s, i) => {
    const gaps = [];
    for (let j = 1; j < s.length; j++) if (s[j] !== s[j - 1] + 1) gaps.push(`${s[j - 1]}->${s[j]}`);
    return `#${i}:${s[0] ?? '-'}..${s.at(-1) ?? '-'}(${s.length})${gaps.length ? ' gaps ' + gaps.join(',') : ''} close=${sub.closes[i] ?? 'open'}`;
  });
  if (innerGap || tail || head || dup || disorder) log(`${sub.name} sessions: ${detail.join('; ')}`);
  return {
    name: sub.name, delivered: [...seen].length, lost: innerGap + tail + head, dup, disorder,
    missedAcrossReconnect: acrossGap, sessions: sub.sessions.length, reconnects: sub.reconnects,
  };
}

const results = [];
function report(scenario, published, verdicts, extra = '', failures = []) {
  const delivered = verdicts.reduce((a, v) => a + v.delivered, 0);
  const lost = verdicts.reduce((a, v) => a + v.lost, 0);
  const dup = verdicts.reduce((a, v) => a + v.dup, 0);
  const per = verdicts.map((v) => `${v.name}:${v.delivered}/${v.lost}/${v.dup}` +
    (v.disorder ? `/disorder=${v.disorder}` : '') +
    (v.missedAcrossReconnect !== undefined ? `/across-reconnect=${v.missedAcrossReconnect}` : '') +
    (v.resets ? `/resets=${v.resets}` : '') + (v.reconnects ? `/rc=${v.reconnects}` : '')).join(' ');
  for (const v of verdicts) {
    if (v.lost) failures.push(`${v.name}: lost ${v.lost}`);
    if (v.dup) failures.push(`${v.name}: ${v.dup} duplicates`);
    if (v.disorder) failures.push(`${v.name}: ${v.disorder} out of order`);
  }
  const ok = failures.length === 0;
  console.log(`chaos ${scenario}: published=${published} delivered=${delivered} lost=${lost} duplicated=${dup} ` +
    `(per subscriber name:delivered/lost/dup ${per})${extra ? ' ' + extra : ''} ${ok ? 'PASS' : 'FAIL'}`);
  for (const f of failures) console.log(`  FAIL ${scenario}: ${f}`);
  results.push({ scenario, ok });
}

/** Waits (bounded) until every subscriber holds every published number, then stops them. */
async function drain(subs, publisher, ms) {
  const want = publisher.count;
  const max = Math.max(...publisher.acked);
  const t0 = Date.now();
  const deadline = t0 + ms;
  let pending = subs;
  while (Date.now() < deadline) {
    pending = subs.filter((s) => !(s instanceof SockjsSub ? Math.max(0, ...s.ns()) >= max : new Set(s.ns()).size >= want));
    if (!pending.length) break;
    await sleep(250);
  }
  log(`drain: ${((Date.now() - t0) / 1000).toFixed(1)} s${pending.length ? `, still missing: ${pending.map((s) => s.name).join(',')}` : ''}`);
  await sleep(1500); // late duplicates would show up here
  for (const s of subs) s.stop();
}

const uniq = (p) => `chaos-${p}-${process.pid}-${Date.now().toString(36)}`;

/** Publishes probes until every SockJS subscriber has one (their subscribe is in effect). */
async function probeSockjs(runnerUrl, channel, subs, ms) {
  const deadline = Date.now() + ms;
  let k = 0;
  while (Date.now() < deadline && !subs.every((s) => s.probed)) {
    await fetch(`${runnerUrl}/v1/publish`, {
      method: 'POST', headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel, data: { probe: k++ } }), signal: AbortSignal.timeout(5000),
    }).catch(() => {});
    await sleep(500);
  }
  return subs.every((s) => s.probed);
}

// ---------------------------------------------------------------------------------------------
// Scenario: bad network.

async function badNetwork(seconds) {
  const name = `bad-network`;
  const runner = new Runner('badnet', { port: 8080 });
  await runner.start();
  const proxy = await new FaultProxy(NS_IP, 8080).listen();
  const errors = new Errors();
  const channel = uniq('badnet');
  const url = proxy.url;
  const subs = [
    new SseSub(url, channel, errors),
    new StreamSub(url, channel, errors),
    new PollSub(url, channel, errors),
    new PollSub(url, channel, errors, { jsonp: true }),
    new SockjsSub('xhr-streaming', url, channel, errors),
    new SockjsSub('xhr-polling', url, channel, errors),
  ];
  if (BROWSER) subs.push(new BrowserSub(url, channel, errors));
  const hardDeadline = Date.now() + (seconds + 90) * 1000;
  const running = subs.map((s) => s.run(hardDeadline));
  const sock = subs.filter((s) => s instanceof SockjsSub);
  if (!(await probeSockjs(runner.url, channel, sock, 20000))) log('bad-network: SockJS subscribers not positioned');
  const br = subs.find((s) => s instanceof BrowserSub);
  for (let i = 0; br && i < 100 && !(br.transports?.length); i++) await sleep(200);

  // Impairments: 10% loss each way on the veth, 200 ± 100 ms per chunk, 1-byte..1 KiB slices,
  // 2 Mbit/s, a stall every 4 s, a reset every 10 s, and a 2 s hard cut at a third of the run
  // (the long run: a 1–5 s cut every 30 s).
  impair.loss(10);
  impair.bandwidth('2mbit');
  proxy.faults = { latency: 200, jitter: 100, slice: 512 };
  proxy.stalls(Number(process.env.CHAOS_STALL_MS ?? 4000));
  proxy.resets(Number(process.env.CHAOS_RESET_MS ?? 10000));
  const t0 = Date.now();
  const cuts = [];
  const cutter = (async () => {
    const plan = LONG ? [] : [seconds / 3];
    if (LONG) for (let t = 30; t < seconds - 10; t += 30) plan.push(t);
    for (const at of plan) {
      while (Date.now() - t0 < at * 1000) await sleep(100);
      const len = LONG ? Math.round(rand(1000, 5000)) : 2000;
      impair.setCut(true); cuts.push(len);
      await sleep(len);
      impair.setCut(false);
    }
  })();
  const pub = new Publisher({ urls: [url], channel, scenario: name, errors, batch: 5, intervalMs: 150 });
  await pub.run({ untilMs: t0 + seconds * 1000, maxCount: 100000 });
  await cutter;
  // Calm the network for the drain (the proxy keeps its latency).
  impair.clear();
  proxy.calm();
  await drain(subs, pub, 60000);
  await Promise.all(running);
  const published = [...pub.acked];
  const verdicts = subs.map((s) => (s instanceof SockjsSub ? checkSockjs(s, published) : checkExact(s, published)));
  const bad = errors.undesigned(() => false);
  const failures = bad.map((e) => `undesigned error ${e.where} ${e.status} ${e.code ?? e.body}`);
  report(name, pub.count, verdicts,
    `browser-transports=${br ? (br.transports ?? []).join('>') : 'skipped'} faults: conns=${proxy.stats.conns} resets=${proxy.stats.resets} stalls=${proxy.stats.stalls} cuts=${cuts.join('+')}ms publish-retries=${pub.failures}`,
    failures);
  await proxy.close();
  await runner.stop();
}

// ---------------------------------------------------------------------------------------------
// Scenario: kill -9 the runner mid-stream, restart it on the same state dir (embedded KV).

async function killRestart() {
  const name = 'kill9-restart';
  const runner = new Runner('kill9', { port: 8090 });
  await runner.start();
  const errors = new Errors();
  const channel = uniq('kill9');
  const subs = [
    new SseSub(runner.url, channel, errors),
    new StreamSub(runner.url, channel, errors),
    new PollSub(runner.url, channel, errors),
    new PollSub(runner.url, channel, errors, { jsonp: true }),
  ];
  const running = subs.map((s) => s.run(Date.now() + 120000));
  const pub = new Publisher({ urls: [runner.url], channel, scenario: name, errors, batch: 1, intervalMs: 20 });
  const t0 = Date.now();
  const pubRun = pub.run({ untilMs: t0 + 25000, maxCount: 100000, retryDeadlineMs: 30000 });
  const kills = [];
  for (const at of [7000, 16000]) {
    while (Date.now() - t0 < at) await sleep(50);
    const before = pub.count;
    await runner.kill9();
    kills.push(before);
    await sleep(1000);
    await runner.start();
  }
  await pubRun;
  // Acknowledged == retained: what history says must be exactly what the publisher was told.
  const hist = [];
  for (let since = 0, i = 0; i < 1000; i++) {
    const res = await fetch(`${runner.url}/v1/history/${channel}?since=${since}&limit=1000`);
    const h = await res.json();
    if (!h.messages.length) break;
    for (const m of h.messages) hist.push(m.data.n);
    since = h.messages.at(-1).seq;
  }
  await drain(subs, pub, 30000);
  await Promise.all(running);
  const published = [...pub.acked];
  const failures = [];
  const histSet = new Set(hist);
  const missing = published.filter((n) => !histSet.has(n)).length;
  if (missing) failures.push(`${missing} acknowledged publishes missing from history after kill -9`);
  if (hist.length !== histSet.size) failures.push(`history holds ${hist.length - histSet.size} duplicates`);
  for (const e of errors.undesigned(() => false)) failures.push(`undesigned error ${e.where} ${e.status} ${e.code ?? e.body}`);
  report(name, pub.count, subs.map((s) => checkExact(s, published)),
    `kills-at-acked=${kills.join(',')} history=${hist.length} publish-retries=${pub.failures}`, failures);
  await runner.stop();
}

// ---------------------------------------------------------------------------------------------
// Scenario: Redis (appendonly, fsync always) killed and restarted under two runners.

async function startRedis(dir, port) {
  mkdirSync(dir, { recursive: true });
  const r = spawnNs('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes',
    '--appendfsync', 'always', '--save', '', '--dir', dir, '--daemonize', 'no']);
  await waitOutput(r, /Ready to accept connections/, 15000, 'redis');
  return r;
}

/** Resets allowed; a gap (or repeat) is only acceptable right after an explicit reset. */
function checkResume(sub, published) {
  let silentGap = 0, dup = 0, disorder = 0, afterReset = false, prev = 0, covered = 0;
  const seen = new Set();
  for (const e of sub.events) {
    if (e.reset) { afterReset = true; continue; }
    if (seen.has(e.n)) { if (!afterReset) dup++; } else seen.add(e.n);
    if (e.n <= prev && !afterReset) disorder++;
    if (e.n > prev + 1) { if (afterReset) covered += e.n - prev - 1; else silentGap += e.n - prev - 1; }
    prev = Math.max(prev, e.n);
    afterReset = false;
  }
  const max = Math.max(0, ...published);
  const tail = published.filter((n) => n > prev).length;
  return { name: sub.name, delivered: sub.ns().length, lost: silentGap + tail, dup, disorder,
    resets: sub.events.filter((e) => e.reset).length, reconnects: sub.reconnects, covered, max };
}

async function redisRestart() {
  const name = 'redis-restart';
  const port = 6390;
  const dir = path.join(TMP, 'redis');
  let redis = await startRedis(dir, port);
  const env = { SPIN_VARIABLE_BACKEND: 'redis', SPIN_VARIABLE_REDIS_URL: `redis://127.0.0.1:${port}` };
  const a = new Runner('redis-a', { port: 8100, env });
  const b = new Runner('redis-b', { port: 8110, env });
  await a.start(); await b.start();
  const errors = new Errors();
  const channel = uniq('redis');
  const subs = [];
  for (const r of [a, b]) {
    subs.push(new SseSub(r.url, channel, errors), new StreamSub(r.url, channel, errors),
      new PollSub(r.url, channel, errors), new PollSub(r.url, channel, errors, { jsonp: true }));
  }
  subs.forEach((s, i) => { s.kind = `${s.kind}@${i < 4 ? 'a' : 'b'}`; });
  const running = subs.map((s) => s.run(Date.now() + 120000));
  const pub = new Publisher({ urls: [a.url, b.url], channel, scenario: name, errors, batch: 1, intervalMs: 20 });
  const t0 = Date.now();
  const pubRun = pub.run({ untilMs: t0 + 25000, maxCount: 100000, retryDeadlineMs: 30000 });
  const kills = [];
  while (Date.now() - t0 < 9000) await sleep(50);
  kills.push(pub.count);
  await killChild(redis, 'SIGKILL');
  await sleep(2000);
  redis = await startRedis(dir, port);
  await pubRun;
  await drain(subs, pub, 40000);
  await Promise.all(running);
  const published = [...pub.acked];
  // Designed while Redis is down: 503 store_unavailable (with Retry-After).
  // (JSONP carries its errors in the callback, with status 200.)
  const designed = (e) => (e.status === 503 || e.where === 'jsonp(200)') && e.code === 'store_unavailable';
  const failures = errors.undesigned(designed).map((e) => `undesigned error ${e.where} ${e.status} ${e.code ?? e.body}`);
  const verdicts = subs.map((s) => checkResume(s, published));
  const storeErrs = errors.list.filter(designed).length;
  const covered = verdicts.reduce((x, v) => x + v.covered, 0);
  report(name, pub.count, verdicts, `redis-killed-at-acked=${kills.join(',')} 503-store_unavailable=${storeErrs} ` +
    `reset-covered=${covered} publish-retries=${pub.failures}`, failures);
  await a.stop(); await b.stop();
  await killChild(redis, 'SIGTERM');
}

// ---------------------------------------------------------------------------------------------
// Scenario: overload. More held requests than max_held_requests → 503 + Retry-After, while
// publishes and /healthz stay fast.

async function overload() {
  const name = 'overload';
  const CAP = 20, EXTRA = 15;
  const runner = new Runner('overload', { port: 8120, env: { SPIN_VARIABLE_MAX_HELD_REQUESTS: String(CAP) } });
  await runner.start();
  const channel = uniq('overload');
  const errors = new Errors();
  const failures = [];
  const cursor = (await (await fetch(`${runner.url}/v1/poll?channel=${channel}&timeout=0`)).json()).cursor;
  const held = [];
  const outcomes = [];
  for (let i = 0; i < CAP + EXTRA; i++) {
    const p = fetch(`${runner.url}/v1/poll?channel=${channel}&cursor=${cursor}&timeout=25`, { signal: AbortSignal.timeout(40000) })
      .then(async (res) => {
        const text = await res.text();
        const o = { status: res.status, retryAfter: res.headers.get('retry-after'), text, at: Date.now() };
        if (res.status !== 200) errors.add('poll', res.status, text, res.headers);
        outcomes.push(o);
        return o;
      }).catch((e) => ({ status: 0, text: String(e) }));
    held.push(p);
    await sleep(20);
  }
  await sleep(1500);
  const rejected = outcomes.filter((o) => o.status === 503);
  // An SSE stream beyond the cap is refused the same way.
  const sse = await fetch(`${runner.url}/v1/sse?channel=${channel}`, { signal: AbortSignal.timeout(5000) });
  const sseStatus = sse.status; const sseRetry = sse.headers.get('retry-after');
  const sseText = sseStatus === 200 ? '' : await sse.text();
  if (sseStatus !== 200) errors.add('sse', sseStatus, sseText, sse.headers); else sse.body.cancel();
  // Responsiveness while saturated.
  const lat = [];
  for (let i = 0; i < 10; i++) {
    let t = Date.now();
    const h = await fetch(`${runner.adminUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    lat.push(['healthz', h.status, Date.now() - t]);
    t = Date.now();
    const p = await fetch(`${runner.url}/v1/publish`, {
      method: 'POST', headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: `${channel}-other`, data: { i } }), signal: AbortSignal.timeout(5000),
    });
    await p.text();
    lat.push(['publish', p.status, Date.now() - t]);
  }
  // Wake the held ones with one message on their channel.
  const t = Date.now();
  const pr = await fetch(`${runner.url}/v1/publish`, {
    method: 'POST', headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel, data: { n: 1 } }), signal: AbortSignal.timeout(5000),
  });
  await pr.text();
  const all = await Promise.all(held);
  const woke = all.filter((o) => o.status === 200 && JSON.parse(o.text).messages.some((m) => m.data?.n === 1));
  const wakeMs = Math.max(0, ...woke.map((o) => o.at - t));
  const maxHealth = Math.max(...lat.filter((l) => l[0] === 'healthz').map((l) => l[2]));
  const maxPub = Math.max(...lat.filter((l) => l[0] === 'publish').map((l) => l[2]));
  if (rejected.length < 1) failures.push(`no 503 with ${CAP + EXTRA} held polls and cap ${CAP}`);
  if (woke.length + rejected.length !== CAP + EXTRA) failures.push(`held ${woke.length} + rejected ${rejected.length} != ${CAP + EXTRA}`);
  if (woke.length > CAP) failures.push(`${woke.length} held > cap ${CAP}`);
  for (const o of rejected) if (!o.retryAfter) failures.push('503 without Retry-After');
  if (sseStatus !== 503 || !sseRetry) failures.push(`SSE beyond cap answered ${sseStatus} retry-after=${sseRetry}`);
  if (lat.some((l) => l[1] !== 200)) failures.push(`healthz/publish statuses ${lat.map((l) => l[1]).join(',')}`);
  if (maxHealth > 1000 || maxPub > 1000) failures.push(`slow while saturated: healthz ${maxHealth} ms, publish ${maxPub} ms`);
  const designed = (e) => e.status === 503 && e.code === 'too_many_held_requests' && e.retryAfter;
  for (const e of errors.undesigned(designed)) failures.push(`undesigned error ${e.where} ${e.status} ${e.code ?? e.body}`);
  report(name, 1, [{ name: 'held-polls', delivered: woke.length, lost: 0, dup: 0, disorder: 0 }],
    `held=${woke.length} rejected-503=${rejected.length}+sse retry-after=${rejected[0]?.retryAfter ?? '-'} ` +
    `healthz-max=${maxHealth}ms publish-max=${maxPub}ms wake=${wakeMs}ms`, failures);
  await runner.stop();
}

// ---------------------------------------------------------------------------------------------
// Scenario (long): soak. 100k publishes, 1k churning long-poll subscribers, RSS every 5 s.

async function soak() {
  const name = 'soak';
  const TOTAL = Number(process.env.SOAK_PUBLISHES ?? 100000);
  const SUBS = Number(process.env.SOAK_SUBSCRIBERS ?? 1000);
  const CHANNELS = Number(process.env.SOAK_CHANNELS ?? 100);
  const MAX_S = Number(process.env.SOAK_MAX_SECONDS ?? 1800);
  const runner = new Runner('soak', { port: 8130, env: { SPIN_VARIABLE_RETENTION_COUNT: '100000' } });
  await runner.start();
  const errors = new Errors();
  const deadline = Date.now() + MAX_S * 1000;
  const chans = Array.from({ length: CHANNELS }, (_, i) => uniq(`soak${i}`));
  const rss = [];
  const sampler = setInterval(() => { rss.push(runner.rssKb()); log(`soak: runner RSS ${(rss.at(-1) / 1024).toFixed(1)} MiB`); }, 5000);
  rss.push(runner.rssKb());
  // A churning subscriber: long-polls with its cursor, and now and then drops its request
  // mid-wait (abort) or pauses, like a client going away and coming back.
  const subs = Array.from({ length: SUBS }, (_, i) => {
    const s = new PollSub(runner.url, chans[i % CHANNELS], errors);
    s.run = async function (dl) {
      while (!this.stopped && Date.now() < dl) {
        const q = this.query(); q.set('timeout', String(rand(0.5, 4).toFixed(1)));
        const ac = new AbortController(); this.controller = ac;
        const churn = Math.random() < 0.2 ? setTimeout(() => ac.abort(), rand(100, 2000)) : null;
        try {
          const res = await fetch(`${this.url}/v1/poll?${q}`, { signal: ac.signal });
          const text = await res.text();
          if (res.status !== 200) { this.errors.add('soak-poll', res.status, text, res.headers); await sleep(1000); continue; }
          const body = JSON.parse(text);
          for (const ev of body.messages) this.onEvent(ev);
          this.cursor = body.cursor;
        } catch { this.reconnects++; await sleep(rand(0, 1000)); }
        clearTimeout(churn);
      }
    };
    return s;
  });
  const running = subs.map((s) => s.run(deadline));
  let published = 0;
  // A few publishers at a time, paced at SOAK_RATE messages/s overall, keep the load modest
  // and make the run last long enough for the subscribers to churn.
  const lanes = 4;
  const RATE = Number(process.env.SOAK_RATE ?? 500);
  const pubs = chans.map((c) => new Publisher({ urls: [runner.url], channel: c, scenario: name, errors, batch: 50,
    intervalMs: Math.round((lanes * 50 * 1000) / RATE) }));
  const per = Math.ceil(TOTAL / CHANNELS);
  await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
    for (let i = lane; i < pubs.length; i += lanes) {
      await pubs[i].run({ untilMs: deadline, maxCount: per, retryDeadlineMs: 30000 });
      published += pubs[i].count;
    }
  }));
  // Drain per channel.
  const dl = Date.now() + 120000;
  while (Date.now() < dl && !subs.every((s) => new Set(s.ns()).size >= per)) await sleep(500);
  for (const s of subs) s.stop();
  await Promise.all(running);
  clearInterval(sampler);
  rss.push(runner.rssKb());
  const verdicts = subs.map((s, i) => checkExact(s, [...pubs[i % CHANNELS].acked]));
  const failures = errors.undesigned(() => false).map((e) => `undesigned error ${e.where} ${e.status} ${e.code ?? e.body}`);
  const q = Math.floor(rss.length / 4);
  const early = Math.max(...rss.slice(0, Math.max(2, q)));
  const peak = Math.max(...rss);
  if (peak > early * 2 + 100 * 1024) failures.push(`RSS grew from ${early} kB to ${peak} kB`);
  const agg = { name: `${SUBS}-long-polls`, delivered: 0, lost: 0, dup: 0, disorder: 0, reconnects: 0 };
  for (const v of verdicts) { agg.delivered += v.delivered; agg.lost += v.lost; agg.dup += v.dup; agg.disorder += v.disorder; agg.reconnects += v.reconnects; }
  report(name, published, [agg], `rss-kB=${rss.join(',')} early=${early} peak=${peak}`, failures);
  await runner.stop();
}

// ---------------------------------------------------------------------------------------------

const plan = LONG
  ? [['bad-network', () => badNetwork(Number(process.env.BADNET_SECONDS ?? 300))], ['kill9-restart', killRestart],
      ['redis-restart', redisRestart], ['overload', overload], ['soak', soak]]
  : [['bad-network', () => badNetwork(Number(process.env.BADNET_SECONDS ?? 60))], ['kill9-restart', killRestart],
      ['redis-restart', redisRestart], ['overload', overload]];

const overall = setTimeout(() => {
  console.log('chaos: overall time limit reached');
  process.exit(1);
}, (LONG ? 3 * 3600 : 8 * 60) * 1000);
overall.unref();

for (const [name, fn] of plan) {
  if (ONLY && !ONLY.includes(name)) continue;
  const t = Date.now();
  try {
    await fn();
  } catch (e) {
    console.log(`chaos ${name}: ERROR ${e.stack ?? e}`);
    results.push({ scenario: name, ok: false });
  }
  impair.clear();
  for (const c of [...children]) await killChild(c);
  log(`${name} took ${((Date.now() - t) / 1000).toFixed(1)} s`);
}
const failed = results.filter((r) => !r.ok).map((r) => r.scenario);
console.log(`chaos: ${results.length - failed.length}/${results.length} scenarios passed${failed.length ? ` (failed: ${failed.join(', ')})` : ''}`);
process.exit(failed.length ? 1 : 0);
