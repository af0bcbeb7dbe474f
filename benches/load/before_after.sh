#!/bin/bash
# Before/after on one machine in one session: the binaries of two commits,
# run alternately, ROUNDS rounds: the axum ceiling, catalog search (one hot
# query and, when the `new` directory has `query_mix`, the 4,000-query mix),
# license validation over HTTP and gRPC, and the order -> pay -> license
# pipeline on PostgreSQL + NATS (at saturation and offered 500/s).
#
#   BINS=/tmp/bins benches/load/before_after.sh
#
# where $BINS/base and $BINS/new each hold `bazaar`, `http_ceiling`,
# `validate_load` and `pipeline_load` built from one commit (see
# benches/README.md for the cargo commands). Each data dir is seeded with
# 10,000 products once, and a license key bought and activated on it.
set -uo pipefail
BINS=${BINS:?set BINS to the directory holding base/ and new/}
here="$(cd "$(dirname "$0")" && pwd)"
ROUNDS=${ROUNDS:-3}
LOAD=$here
OUT=${OUT:-/tmp/bazaar-before-after}
mkdir -p "$OUT"
SEARCH='/v1/products?category=customer-support&limit=20'
la() { cut -d' ' -f1-3 /proc/loadavg; }
wrkrun() { # label url [args]
  local label=$1 url=$2; shift 2
  echo "-- $label (load $(la))"
  wrk -t2 -c32 -d15s --latency "$@" "$url" | grep -E 'Requests/sec|^ +(50|99)%|Non-2xx|Socket errors'
}
for v in base new; do
  D=/tmp/b16-$v
  if [ ! -f $D/key ]; then
    rm -rf $D; mkdir -p $D $OUT
    s=$(date +%s.%N)
    BAZAAR_LOG=warn $BINS/$v/bazaar seed --products 10000 --data-dir $D > $D/seed.out 2>&1 || { echo "seed $v failed"; tail $D/seed.out; exit 1; }
    echo "seed $v: $(echo "$(date +%s.%N) - $s" | bc) s (load $(la))"
    $here/license_key.sh $BINS/$v/bazaar $D > $D/key || { echo "key $v failed"; exit 1; }
  fi
done
$BINS/new/query_mix 4000 10000 1 > $OUT/mix.txt 2>/dev/null || true
$BINS/new/http_ceiling 127.0.0.1:18080 > /dev/null 2>&1 &
ceil=$!
trap 'kill $ceil 2>/dev/null' EXIT
for r in $(seq 1 $ROUNDS); do
  for v in base new; do
    D=/tmp/b16-$v
    echo "=== round $r $v"
    BAZAAR_LOG=warn $BINS/$v/bazaar http --data-dir $D --http-addr 127.0.0.1:18081 > $D/http.log 2>&1 &
    srv=$!
    for _ in $(seq 1 300); do curl -sf -o /dev/null http://127.0.0.1:18081/health && break; sleep 0.2; done
    sleep 1
    wrkrun "ceiling json" http://127.0.0.1:18080/json
    wrkrun "$v search hot" "http://127.0.0.1:18081$SEARCH"
    if [ -s $OUT/mix.txt ]; then MIX=$OUT/mix.txt wrkrun "$v search mix" http://127.0.0.1:18081 -s $LOAD/query_mix.lua; fi
    wrkrun "ceiling echo" http://127.0.0.1:18080/echo -s $LOAD/echo.lua
    BAZAAR_LICENSE_KEY=$(cat $D/key) wrkrun "$v validate" http://127.0.0.1:18081/v1/licenses/validate -s $LOAD/validate.lua
    kill $srv; wait $srv 2>/dev/null
    echo "-- $v grpc validate_load (load $(la))"
    (cd /tmp && $BINS/$v/validate_load --store sqlite --concurrency 64 --connections 4 --duration 10 --warmup 2 2>&1 | tail -4)
    echo "-- $v pipeline 5000 sat (load $(la))"
    BAZAAR_BIN=$BINS/$v/bazaar $BINS/$v/pipeline_load --purchases 5000 --concurrency 32 --workers 1 --products 150 2>&1 | tail -6
    echo "-- $v pipeline offered 500/s (load $(la))"
    BAZAAR_BIN=$BINS/$v/bazaar $BINS/$v/pipeline_load --purchases 5000 --concurrency 64 --rate 500 --workers 1 --products 150 2>&1 | tail -6
  done
done
