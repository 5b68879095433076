#!/usr/bin/env bash
# Comet chaos suite (issue 8). Usage: tests/chaos/run.sh [short|long]   (default: short)
#
# Sets up a private network namespace joined to the host by a veth pair, runs driver.mjs (which
# starts runners, forwarders and a scratch Redis inside the namespace and impairs the path), and
# always tears everything down again (trap), including on failure or Ctrl-C.
set -euo pipefail
MODE="${1:-short}"
case "$MODE" in short|long) ;; *) echo "usage: $0 [short|long]" >&2; exit 2 ;; esac
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

[ "$(id -u)" = 0 ] || { echo "chaos: needs root (network namespaces, nft, tc)" >&2; exit 2; }
command -v nft >/dev/null || { apt-get update -qq && apt-get install -y -qq nftables >/dev/null; }
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
export COMET_BIN="${COMET_BIN:-$ROOT/target/release/comet-e2e-runner}"
[ -x "$COMET_BIN" ] || COMET_BIN="$ROOT/target/release/comet"
[ -x "$COMET_BIN" ] || { echo "chaos: no runner binary in target/release (build it first)" >&2; exit 2; }
if [ ! -d "$ROOT/tests/node/node_modules/eventsource" ]; then
  (cd "$ROOT/tests/node" && npm ci --prefer-offline --no-audit --no-fund >/dev/null)
fi

NS="comet-chaos-$$"
# Interface names are at most 15 characters.
VH="cch$$"; VN="ccn$$"
export CHAOS_NS="$NS" CHAOS_VETH_NS="$VN" CHAOS_VETH_HOST="$VH"
export CHAOS_HOST_IP=10.213.0.1 CHAOS_NS_IP=10.213.0.2
export CHAOS_TMP="$(mktemp -d /tmp/comet-chaos.XXXXXX)"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Only processes inside our own namespace (runners, forwarders, the scratch Redis), by pid.
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
  fi
  ip link del "$VH" 2>/dev/null || true
  rm -rf "$CHAOS_TMP"
  exit $rc
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip link add "$VH" type veth peer name "$VN"
ip link set "$VN" netns "$NS"
ip addr add "$CHAOS_HOST_IP/30" dev "$VH"
ip link set "$VH" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add "$CHAOS_NS_IP/30" dev "$VN"
ip netns exec "$NS" ip link set "$VN" up
# The impairment table: traffic on the veth (never the namespace's loopback) goes through the
# `impair` chain, which the driver fills with loss (numgen) or drop-all (cuts) rules.
ip netns exec "$NS" nft -f - <<NFT
table inet chaos {
  chain impair { }
  chain input { type filter hook input priority 0; policy accept; iifname "$VN" jump impair; }
  chain output { type filter hook output priority 0; policy accept; oifname "$VN" jump impair; }
}
NFT

start=$(date +%s)
set +e
node "$HERE/driver.mjs" "$MODE"
rc=$?
set -e
echo "chaos: mode=$MODE exit=$rc runtime=$(( $(date +%s) - start ))s"
exit $rc
