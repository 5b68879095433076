#!/usr/bin/env bash
# Real-client end-to-end tests of Comet's /v1 API and its SockJS endpoint: the npm
# `eventsource` client, JSONP run in node:vm, and headless Chromium (playwright-core driving
# /usr/bin/chromium) with the browser's EventSource/fetch and with npm `sockjs-client`.
#
# Needs: Node >= 20, the built runner + wasm components, Redis on 127.0.0.1:6379 (for the
# redis backend), /usr/bin/chromium. Does not build anything.
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
wasm_build="cargo build --release --target wasm32-wasip2 -p comet-fn-subscribe -p comet-fn-publish -p comet-fn-sockjs -p comet-fn-actions"

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
for wasm in comet_fn_subscribe comet_fn_publish comet_fn_sockjs comet_fn_actions; do
  if [ ! -f "$root/target/wasm32-wasip2/release/$wasm.wasm" ]; then
    echo "run.sh: $wasm.wasm missing; build it first:" >&2
    echo "  $wasm_build" >&2
    exit 1
  fi
done
echo "node tests: node $(node --version), runner $COMET_BIN, backends ${COMET_BACKENDS:-kv,redis}"

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
