// Starts the real `comet` runner (the repo's Spin host) on free loopback ports for one test
// file, and stops it afterwards. No mocks: every test talks HTTP to this child process.
//
// Environment:
//   COMET_BIN       path of the runner binary (default ../../target/release/comet)
//   COMET_MANIFEST  the Spin manifest (default ../../spin.toml)
//   COMET_BACKENDS  comma-separated backends each test runs against (default "kv,redis")
//   COMET_REDIS_URL Redis for the redis backend (default redis://127.0.0.1:6379)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const nodeTestsDir = path.resolve(here, '..');
export const repoRoot = path.resolve(nodeTestsDir, '..', '..');

export const COMET_BIN = path.resolve(
  nodeTestsDir,
  process.env.COMET_BIN ?? '../../target/release/comet',
);
export const COMET_MANIFEST = path.resolve(
  nodeTestsDir,
  process.env.COMET_MANIFEST ?? '../../spin.toml',
);
export const REDIS_URL = process.env.COMET_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const PUBLISH_KEY = 'node-e2e-publish-key';

/** The backends every test runs against. */
export const BACKENDS = (process.env.COMET_BACKENDS ?? 'kv,redis')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

/** A channel name no other test (or earlier run against the same Redis) has used. */
export function uniqueChannel(prefix = 'node') {
  return `${prefix}.${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Fails loudly (never skips) when Redis is wanted but not reachable. */
async function assertRedisReachable(url) {
  const u = new URL(url);
  const port = Number(u.port || 6379);
  const host = u.hostname || '127.0.0.1';
  await new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`Redis at ${url} did not answer PING within 2 s`));
    }, 2000);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(
        new Error(
          `Redis at ${url} is not reachable (${e.code ?? e.message}); start it, ` +
            'or run with COMET_BACKENDS=kv',
        ),
      );
    });
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => {
      clearTimeout(timer);
      sock.destroy();
      if (d.toString().startsWith('+PONG')) resolve();
      else reject(new Error(`Redis at ${url} answered ${JSON.stringify(d.toString())}`));
    });
  });
}

/**
 * Starts `comet up` and resolves once it prints `Serving http://…`. `manifest` (relative to
 * tests/node, like COMET_MANIFEST) runs another Spin manifest, e.g. tests/sockjs/spin.toml.
 * @param {{backend?: 'kv'|'redis', env?: Record<string,string>, manifest?: string,
 *   startTimeoutMs?: number}} opts
 */
export async function startComet(opts = {}) {
  const backend = opts.backend ?? 'kv';
  const manifest = opts.manifest ? path.resolve(nodeTestsDir, opts.manifest) : COMET_MANIFEST;
  if (!existsSync(COMET_BIN)) {
    throw new Error(
      `comet runner not found at ${COMET_BIN}: build it with ` +
        '`cargo build --release -p comet-runner && cargo build --release --target wasm32-wasip2 ' +
        '-p comet-fn-subscribe -p comet-fn-publish`, or set COMET_BIN',
    );
  }
  if (backend === 'redis') await assertRedisReachable(REDIS_URL);

  const stateDir = mkdtempSync(path.join(tmpdir(), 'comet-node-e2e-'));
  const env = {
    ...process.env,
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
    SPIN_VARIABLE_PUBLISH_KEY: PUBLISH_KEY,
    SPIN_VARIABLE_HEARTBEAT_SECONDS: '1',
    SPIN_VARIABLE_BACKEND: backend,
    ...(backend === 'redis' ? { SPIN_VARIABLE_REDIS_URL: REDIS_URL } : {}),
    ...(opts.env ?? {}),
  };
  const args = [
    'up',
    '-f',
    manifest,
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--state-dir',
    stateDir,
  ];
  const child = spawn(COMET_BIN, args, {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // Never let a runner outlive the test process, even when a test forgets to stop it: the
  // child does not hold the event loop open, and is killed when the process exits.
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();
  live.add(child);
  child.once('exit', () => live.delete(child));

  // Keep the tail of the runner's output so a failing test can show it.
  const logTail = [];
  const remember = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      logTail.push(line);
      if (logTail.length > 200) logTail.shift();
    }
  };
  child.stderr.on('data', remember);

  const exited = once(child, 'exit');
  let stdoutBuf = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new Error(
          `comet did not print "Serving" within ${opts.startTimeoutMs ?? 20000} ms\n` +
            logTail.join('\n'),
        ),
      );
    }, opts.startTimeoutMs ?? 20000);
    child.stdout.on('data', (chunk) => {
      remember(chunk);
      stdoutBuf += chunk.toString();
      // Both lines (the runner prints them in either order, possibly in separate chunks).
      const m = stdoutBuf.match(/Serving (http:\/\/[^\s]+)/);
      if (m && /Admin http:\/\/[^\s]+\n/.test(stdoutBuf)) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    exited.then(([code, signal]) => {
      clearTimeout(timer);
      reject(
        new Error(`comet exited early (code ${code}, signal ${signal})\n${logTail.join('\n')}`),
      );
    });
  }).catch((e) => {
    child.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
    throw e;
  });
  const adminMatch = stdoutBuf.match(/Admin (http:\/\/[^\s]+)/);

  let stopped = false;
  const server = {
    backend,
    url,
    adminUrl: adminMatch?.[1],
    publishKey: PUBLISH_KEY,
    stateDir,
    child,
    logs: () => logTail.join('\n'),

    /** POSTs one message (or a batch, when given an array) to /v1/publish. */
    async publish(channel, data) {
      const body = Array.isArray(channel)
        ? channel
        : { channel, data };
      const res = await fetch(`${url}/v1/publish`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${PUBLISH_KEY}`,
          'Content-Type': 'application/json',
        },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status !== 200) {
        throw new Error(`publish answered ${res.status}: ${text}`);
      }
      return JSON.parse(text);
    },

    /** Stops the runner: SIGTERM (it drains), then SIGKILL after a grace period. */
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited.catch(() => {});
        clearTimeout(killer);
      }
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * Registers `before`/`after` hooks (node:test) that start one runner for the enclosing
 * suite; returns a getter for it.
 */
export function useComet(hooks, opts) {
  let server;
  hooks.before(async () => {
    server = await startComet(opts);
  });
  hooks.after(async () => {
    await server?.stop();
  });
  return () => server;
}

/** Resolves when `predicate()` is true; rejects with `describe()` after `timeoutMs`. */
export async function waitFor(predicate, { timeoutMs = 10000, intervalMs = 20, describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms: ${describe ? describe() : 'condition'}`);
    }
    await sleep(intervalMs);
  }
}
