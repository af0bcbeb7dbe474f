#!/usr/bin/env bash
# Issue 19: the cost of `bazaar gateway` in front of the same upstreams,
# next to Debian's nginx configured as the equivalent keep-alive reverse
# proxy, in one session:
#   - closed loop (`wrk -t2 -c64`), ROUNDS rounds interleaved: direct, through
#     the gateway, through nginx, against the axum ceiling (`GET /json`) and
#     against `bazaar serve --demo` on a mix of ~4,000 distinct catalog
#     queries (the uncached path: pages, sorts, categories, text);
#   - open loop at a fixed RATE req/s (coordinated-omission-corrected
#     latency, `open_loop`), direct, gateway and nginx on the ceiling.
#
#   cargo build --release -p bazaar --bin bazaar \
#       -p bazaar-benches --example http_ceiling --example open_loop \
#       -p bazaar-tantivy --example query_mix
#   benches/load/gateway.sh            # from the repository root
set -euo pipefail
BIN=${BIN:-target/release/bazaar}
EXAMPLES=${EXAMPLES:-target/release/examples}
DATA=${DATA:-/tmp/bazaar-gateway-bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
RATE=${RATE:-5000}
OPEN_SECONDS=${OPEN_SECONDS:-10}
here="$(cd "$(dirname "$0")" && pwd)"

rm -rf "$DATA" && mkdir -p "$DATA"
"$EXAMPLES/query_mix" 4000 50 1 > "$DATA/mix.txt"

cat > "$DATA/nginx.conf" <<EOF
worker_processes auto;
pid $DATA/nginx.pid;
error_log $DATA/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $DATA/nginx-body;
    proxy_temp_path $DATA/nginx-proxy;
    upstream ceiling { server 127.0.0.1:18080; keepalive 256; }
    upstream bazaar { server 127.0.0.1:18081; keepalive 256; }
    server {
        listen 127.0.0.1:18011 reuseport;
        location / {
            proxy_pass http://ceiling;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;
        }
    }
    server {
        listen 127.0.0.1:18012 reuseport;
        location / {
            proxy_pass http://bazaar;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;
        }
    }
}
EOF

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; nginx -c "$DATA/nginx.conf" -s stop 2>/dev/null || true' EXIT
"$EXAMPLES/http_ceiling" 127.0.0.1:18080 > "$DATA/ceiling.log" 2>&1 &
pids+=($!)
BAZAAR_LOG=warn "$BIN" serve --demo --data-dir "$DATA/serve" --http-addr 127.0.0.1:18081 --grpc-addr 127.0.0.1:18051 \
  > "$DATA/serve.log" 2>&1 &
pids+=($!)
for url in http://127.0.0.1:18080/json http://127.0.0.1:18081/health/ready; do
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$url" && break; sleep 0.2; done
done
# The gateways verify tokens with the served marketplace's keys (its data dir).
BAZAAR_LOG=warn "$BIN" gateway --data-dir "$DATA/serve" --http-addr 127.0.0.1:18001 \
  --upstream ceiling=http://127.0.0.1:18080 > "$DATA/gateway-ceiling.log" 2>&1 &
pids+=($!)
BAZAAR_LOG=warn "$BIN" gateway --data-dir "$DATA/serve" --http-addr 127.0.0.1:18002 \
  --upstream bazaar=http://127.0.0.1:18081 > "$DATA/gateway-bazaar.log" 2>&1 &
pids+=($!)
nginx -c "$DATA/nginx.conf"
for url in http://127.0.0.1:18001/json http://127.0.0.1:18002/health/ready http://127.0.0.1:18011/json http://127.0.0.1:18012/health/ready; do
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$url" && break; sleep 0.2; done
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); nginx $(nginx -v 2>&1 | cut -d/ -f2)"

run() { # name url [wrk args]
  local name=$1 url=$2
  shift 2
  printf -- '-- %-28s (load average: %s)\n' "$name" "$(cut -d' ' -f1-3 /proc/loadavg)"
  MIX="$DATA/mix.txt" wrk -t2 -c64 -d"$DURATION" --latency "$@" "$url" \
    | grep -E 'Requests/sec|^ +(50|99)%|Non-2xx|Socket errors'
}
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  run "ceiling direct" http://127.0.0.1:18080/json
  run "ceiling via gateway" http://127.0.0.1:18001/json
  run "ceiling via nginx" http://127.0.0.1:18011/json
  run "bazaar mix direct" http://127.0.0.1:18081 -s "$here/query_mix.lua"
  run "bazaar mix via gateway" http://127.0.0.1:18002 -s "$here/query_mix.lua"
  run "bazaar mix via nginx" http://127.0.0.1:18012 -s "$here/query_mix.lua"
done
echo "== open loop, $RATE req/s for ${OPEN_SECONDS}s over 64 connections"
for r in $(seq 1 "$ROUNDS"); do
  for target in "direct 18080" "gateway 18001" "nginx 18011"; do
    set -- $target
    echo "-- round $r $1"
    "$EXAMPLES/open_loop" "http://127.0.0.1:$2/json" "$RATE" "$OPEN_SECONDS" 64 | grep -E 'completed|^ +(50|99|99\.9) ' || true
  done
done
echo "gateway RSS: $(ps -o rss= -p "${pids[2]}") KiB (ceiling), $(ps -o rss= -p "${pids[3]}") KiB (bazaar)"
