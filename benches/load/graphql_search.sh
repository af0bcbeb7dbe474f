#!/usr/bin/env bash
# Issue 23: catalog search through the GraphQL API next to the same search
# over REST, on one `bazaar http` process (embedded SQLite, the default RAM
# search index, 10,000 products), in the same session: one hot query and a
# mix of ~4,000 distinct queries (the REST paths of `query_mix`, and the same
# searches as GraphQL bodies from graphql_mix.py), each `wrk -t2 -c32`,
# ROUNDS rounds, interleaved.
#
#   cargo build --release -p bazaar --bin bazaar -p bazaar-tantivy --example query_mix
#   benches/load/graphql_search.sh        # from the repository root
set -euo pipefail
BIN=${BIN:-target/release/bazaar}
MIX_BIN=${MIX_BIN:-target/release/examples/query_mix}
DATA=${DATA:-/tmp/bazaar-graphql-bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
HOT='/v1/products?category=sales&limit=20'
here="$(cd "$(dirname "$0")" && pwd)"

if [ -z "${SKIP_SEED:-}" ]; then
  rm -rf "$DATA" && mkdir -p "$DATA"
  BAZAAR_LOG=warn "$BIN" seed --products 10000 --data-dir "$DATA" > "$DATA/seed.out"
fi
"$MIX_BIN" 4000 10000 1 > "$DATA/mix.txt"
"$here/graphql_mix.py" < "$DATA/mix.txt" > "$DATA/graphql.txt"
echo "$HOT" | "$here/graphql_mix.py" > "$DATA/graphql-hot.txt"
echo "mix: $(sort -u "$DATA/mix.txt" | wc -l) distinct paths, $(sort -u "$DATA/graphql.txt" | wc -l) distinct bodies"

BAZAAR_LOG=warn "$BIN" http --data-dir "$DATA" --http-addr 127.0.0.1:18081 > "$DATA/http.log" 2>&1 &
bazaar=$!
trap 'kill $bazaar 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf -o /dev/null http://127.0.0.1:18081/health/ready && break; sleep 0.2; done

# Every GraphQL body answers without errors and finds what its REST twin finds.
python3 - "$DATA/mix.txt" "$DATA/graphql.txt" <<'PY'
import json, sys, urllib.request
paths = [l.strip() for l in open(sys.argv[1]) if l.strip()]
bodies = [l.strip() for l in open(sys.argv[2]) if l.strip()]
assert len(paths) == len(bodies)
for path, body in zip(paths, bodies):
    rest = json.load(urllib.request.urlopen("http://127.0.0.1:18081" + path))
    request = urllib.request.Request("http://127.0.0.1:18081/graphql", body.encode(), {"Content-Type": "application/json"})
    answer = json.load(urllib.request.urlopen(request))
    assert "errors" not in answer, (body, answer["errors"])
    found = answer["data"]["search"]
    assert found["totalCount"] == rest["total"], (path, found["totalCount"], rest["total"])
    assert [p["id"] for p in found["items"]] == [p["id"] for p in rest["items"]], path
print(f"checked: {len(bodies)} GraphQL searches answer what REST answers (totals and ids in order)")
PY

run() { # name url [wrk args]
  local name=$1 url=$2
  shift 2
  echo "-- $name (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  MIX="$DATA/mix.txt" wrk -t2 -c32 -d"$DURATION" --latency "$@" "$url" \
    | grep -E 'Requests/sec|Latency  |^ +(50|90|99)%|Non-2xx|Socket errors|non-2xx or socket'
}
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  run "REST hot" "http://127.0.0.1:18081$HOT"
  BODIES="$DATA/graphql-hot.txt" run "GraphQL hot" http://127.0.0.1:18081/graphql -s "$here/graphql_mix.lua"
  run "REST mix" http://127.0.0.1:18081 -s "$here/query_mix.lua"
  BODIES="$DATA/graphql.txt" run "GraphQL mix" http://127.0.0.1:18081/graphql -s "$here/graphql_mix.lua"
done
echo "bazaar RSS: $(ps -o rss= -p $bazaar) KiB"
