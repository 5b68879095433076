#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60), one after another, on nightly, one
# worker each. New inputs land in corpus/<target>/ (minimize before committing, see README);
# crashes in artifacts/<target>/; libFuzzer's log of each run in logs/<target>.log.
#
#   fuzz/run.sh [seconds] [target...]
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/fuzz-target}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build || exit 1
mkdir -p logs
failed=()
for t in "${targets[@]}"; do
  echo "== $t (${secs}s)"
  rm -f fuzz-0.log
  cargo +nightly fuzz run "$t" -- \
    -max_total_time="$secs" -jobs=1 -workers=1 -rss_limit_mb=2048 || failed+=("$t")
  # With -jobs, libFuzzer writes the worker's output to fuzz-0.log in the current directory.
  [ -f fuzz-0.log ] && mv fuzz-0.log "logs/$t.log"
  if grep -qE '^SUMMARY|panicked|deadly signal' "logs/$t.log" 2>/dev/null; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "findings in: ${failed[*]} (see artifacts/ and logs/)"
  exit 1
fi
echo "no findings"
