#!/bin/bash
# Tracing cost (issue 21): `bazaar http` with OTLP export at 10 % sampling
# (OTEL_TRACES_SAMPLER=traceidratio, ARG 0.1) to the ceiling example's
# stand-in collector (/v1/traces), against the same binary without, three
# alternating rounds of the hot search, the 4,000-query mix and validation.
#   DATA=/tmp/bazaar-load MIX=/tmp/mix.txt benches/load/tracing_cost.sh
set -uo pipefail
BIN=${BIN:-target/release/bazaar}
CEIL=${CEIL:-target/release/examples/http_ceiling}
D=${DATA:?a data dir seeded with bazaar seed, with its key in $DATA/key (benches/load/license_key.sh)}
LOAD="$(cd "$(dirname "$0")" && pwd)"
MIX=${MIX:?the paths of query_mix 4000 10000 1}
la() { cut -d' ' -f1-3 /proc/loadavg; }
wrkrun() { local label=$1 url=$2; shift 2; echo "-- $label (load $(la))"; wrk -t2 -c32 -d10s --latency "$@" "$url" | grep -E 'Requests/sec|^ +(50|99)%|Non-2xx|Socket errors'; }
$CEIL 127.0.0.1:18080 > /dev/null 2>&1 & ceil=$!
trap 'kill $ceil 2>/dev/null' EXIT
sleep 1
for r in 1 2 3; do
  for mode in off on; do
    echo "=== round $r tracing $mode"
    if [ $mode = on ]; then
      env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:18080 OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 BAZAAR_LOG=warn $BIN http --data-dir $D --http-addr 127.0.0.1:18081 > $D/http-$mode.log 2>&1 &
    else
      BAZAAR_LOG=warn $BIN http --data-dir $D --http-addr 127.0.0.1:18081 > $D/http-$mode.log 2>&1 &
    fi
    srv=$!
    for _ in $(seq 1 300); do curl -sf -o /dev/null http://127.0.0.1:18081/health && break; sleep 0.2; done
    sleep 1
    wrkrun "search hot ($mode)" 'http://127.0.0.1:18081/v1/products?category=customer-support&limit=20'
    MIX=$MIX wrkrun "search mix ($mode)" http://127.0.0.1:18081 -s $LOAD/query_mix.lua
    BAZAAR_LICENSE_KEY=$(cat $D/key) wrkrun "validate ($mode)" http://127.0.0.1:18081/v1/licenses/validate -s $LOAD/validate.lua
    sleep 1
    echo "metrics: $(curl -s http://127.0.0.1:18081/metrics | grep -E '^bazaar_trace_spans_(exported|dropped)_total' | tr '\n' ' ')"
    kill $srv; wait $srv 2>/dev/null
  done
done
