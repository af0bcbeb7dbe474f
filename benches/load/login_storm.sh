#!/usr/bin/env bash
# Issue 18, item 2: does a storm of failed logins (argon2 on every one)
# hurt catalog search in the same process? `bazaar http` on embedded
# SQLite with 10,000 products; the search mix of benches/load/search_mix.sh
# (`wrk -t1 -c32`) alone, then with `wrk -t1 -c16` failed logins from
# random client addresses at the same time, ROUNDS rounds, interleaved.
#
#   cargo build --release -p bazaar --bin bazaar -p bazaar-tantivy --example query_mix
#   benches/load/login_storm.sh           # from the repository root
set -euo pipefail
BIN=${BIN:-target/release/bazaar}
MIX_BIN=${MIX_BIN:-target/release/examples/query_mix}
DATA=${DATA:-/tmp/bazaar-login-storm}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
here="$(cd "$(dirname "$0")" && pwd)"

if [ -z "${SKIP_SEED:-}" ]; then
  rm -rf "$DATA" && mkdir -p "$DATA"
  BAZAAR_LOG=warn "$BIN" seed --products 10000 --data-dir "$DATA" > "$DATA/seed.out"
fi
"$MIX_BIN" 4000 10000 1 > "$DATA/mix.txt"

# Loopback is the "proxy", so each login's X-Forwarded-For is its client.
BAZAAR_LOG=warn BAZAAR_TRUSTED_PROXIES=127.0.0.1 "$BIN" http --data-dir "$DATA" --http-addr 127.0.0.1:18081 \
  > "$DATA/http.log" 2>&1 &
bazaar=$!
trap 'kill $bazaar 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf -o /dev/null http://127.0.0.1:18081/health && break; sleep 0.2; done

search() {
  MIX="$DATA/mix.txt" wrk -t1 -c32 -d"$DURATION" --latency -s "$here/query_mix.lua" http://127.0.0.1:18081 \
    | grep -E 'Requests/sec|^ +(50|90|99)%|non-2xx or socket'
}
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  echo "-- search alone (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  search
  echo "-- search during a login storm"
  wrk -t1 -c16 -d"$DURATION" -s "$here/login_storm.lua" http://127.0.0.1:18081 > "$DATA/storm.out" &
  storm=$!
  search
  wait $storm
  grep -E '^logins|login errors' "$DATA/storm.out"
done
echo "bazaar RSS: $(ps -o rss= -p $bazaar) KiB"
