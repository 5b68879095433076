#!/usr/bin/env bash
# Real-client end-to-end tests of Comet's /v1 API and its SockJS endpoint: the npm
# `eventsource` client, JSONP run in node:vm, and headless Chromium (playwright-core driving
# /usr/bin/chromium) with the browser's EventSource/fetch and with npm `sockjs-client`.
#
# Needs: Node >= 20, the built runner + wasm components, Redis (COMET_REDIS_URL, default
# 127.0.0.1:6379; `cargo test` passes its throw-away one) for the redis backend, and Chromium
# (installed with apt-get when missing and root). Does not build anything.
#
#   bash tests/node/run.sh                      # every test file, kv + redis backends
#   COMET_BACKENDS=kv bash tests/node/run.sh    # kv backend only (no Redis needed)
#   bash tests/node/run.sh jsonp.test.mjs       # some files only
#   bash tests/node/run.sh sockjs.test.mjs      # sockjs-client (also runs tests/sockjs/spin.toml)
#
# Env: COMET_BIN (default target/release/comet, else target/release/comet-e2e-runner, which
# `cargo test --release` builds and is the same program), COMET_MANIFEST, COMET_BACKENDS,
# COMET_REDIS_URL, CHROMIUM_PATH (default /usr/bin/chromium).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"
wasm_build="cargo build --release --target wasm32-wasip2 -p comet-fn-subscribe -p comet-fn-publish -p comet-fn-sockjs -p comet-fn-actions -p comet-fn-files"

if [ -z "${COMET_BIN:-}" ]; then
  if [ -x "$root/target/release/comet" ]; then
    COMET_BIN="$root/target/release/comet"
  elif [ -x "$root/target/release/comet-e2e-runner" ]; then
    COMET_BIN="$root/target/release/comet-e2e-runner"
  else
    echo "run.sh: no runner binary; build it first:" >&2
    echo "  cargo build --release -p comet-runner" >&2
    echo "  $wasm_build" >&2
    exit 1
  fi
fi
export COMET_BIN
for wasm in comet_fn_subscribe comet_fn_publish comet_fn_sockjs comet_fn_actions comet_fn_files; do
  if [ ! -f "$root/target/wasm32-wasip2/release/$wasm.wasm" ]; then
    echo "run.sh: $wasm.wasm missing; build it first:" >&2
    echo "  $wasm_build" >&2
    exit 1
  fi
done
# What npm and apt can bring, bring; say in one line what cannot be had (never skip).
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p')
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
  echo "run.sh: Node.js >= 20 with npm is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "run.sh: $CHROMIUM_PATH missing; installing Debian's chromium with apt-get (once)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null || true
  fi
  if [ ! -x "$CHROMIUM_PATH" ]; then
    echo "run.sh: headless Chromium is required at $CHROMIUM_PATH: apt-get install -y chromium, or set CHROMIUM_PATH" >&2
    exit 1
  fi
fi
export CHROMIUM_PATH
echo "node tests: node $(node --version), runner $COMET_BIN, backends ${COMET_BACKENDS:-kv,redis}, chromium $CHROMIUM_PATH"

npm ci --no-audit --no-fund --prefer-offline

if [ "$#" -gt 0 ]; then files=("$@"); else files=(*.test.mjs); fi
out="$root/target/node-tests"
mkdir -p "$out"
# Files run one at a time (each starts its own runners; the machine has 2 cores). Human-readable
# spec output on stdout, TAP kept in target/node-tests/results.tap.
status=0
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$out/results.tap" \
  "${files[@]}" || status=$?

# node's own summary is above; repeat it as one plain line.
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$out/results.tap" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$out/results.tap" | tail -1)
cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$out/results.tap" | tail -1)
fail=$(( ${fail:-0} + ${cancelled:-0} ))
echo "node-tests: ${pass:-0} passed, ${fail} failed"
if [ "$status" -eq 0 ] && [ "${pass:-0}" -eq 0 ]; then
  echo "run.sh: no test ran" >&2
  status=1
fi
exit "$status"
