#!/usr/bin/env bash
# Issue 17: catalog search over HTTP, bazaar (`bazaar http`, embedded SQLite,
# the default RAM search index) next to the NestJS + Fastify peer, in the
# same session: one hot query and a mix of ~4,000 distinct queries, each
# `wrk -t2 -c32 -d10s`, ROUNDS rounds, interleaved.
#
#   cargo build --release -p bazaar --bin bazaar -p bazaar-tantivy --example query_mix
#   benches/load/search_mix.sh            # from the repository root
set -euo pipefail
BIN=${BIN:-target/release/bazaar}
MIX_BIN=${MIX_BIN:-target/release/examples/query_mix}
PEER=${PEER:-/work/shared/peers/nestjs-catalog/run.sh}
DATA=${DATA:-/tmp/bazaar-search-bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
HOT='/v1/products?category=sales&limit=20'
here="$(cd "$(dirname "$0")" && pwd)"

if [ -z "${SKIP_SEED:-}" ]; then
  rm -rf "$DATA" && mkdir -p "$DATA"
  echo "== seed (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  start=$(date +%s.%N)
  BAZAAR_LOG=warn "$BIN" seed --products 10000 --data-dir "$DATA" > "$DATA/seed.out"
  echo "seed took $(echo "$(date +%s.%N) - $start" | bc) s: $(head -1 "$DATA/seed.out")"
fi
"$MIX_BIN" 4000 10000 1 > "$DATA/mix.txt"
echo "mix: $(sort -u "$DATA/mix.txt" | wc -l) distinct paths"

BAZAAR_LOG=warn "$BIN" http --data-dir "$DATA" --http-addr 127.0.0.1:18081 > "$DATA/http.log" 2>&1 &
bazaar=$!
FASTIFY=1 PORT=18090 "$PEER" > "$DATA/peer.log" 2>&1 &
peer=$!
trap 'kill $bazaar $peer 2>/dev/null || true' EXIT
for url in http://127.0.0.1:18081/health http://127.0.0.1:18090/v1/products; do
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$url" && break; sleep 0.2; done
done
echo "bazaar hot query: $(curl -s "http://127.0.0.1:18081$HOT" | head -c 120)…"

run() { # name url [script]
  local name=$1 url=$2
  shift 2
  echo "-- $name (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  MIX="$DATA/mix.txt" wrk -t2 -c32 -d"$DURATION" --latency "$@" "$url" \
    | grep -E 'Requests/sec|Latency  |^ +(50|90|99)%|Non-2xx|Socket errors|non-2xx or socket'
}
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  run "bazaar hot" "http://127.0.0.1:18081$HOT"
  run "peer hot" "http://127.0.0.1:18090$HOT"
  run "bazaar mix" http://127.0.0.1:18081 -s "$here/query_mix.lua"
  run "peer mix" http://127.0.0.1:18090 -s "$here/query_mix.lua"
done
echo "bazaar RSS: $(ps -o rss= -p $bazaar) KiB"
