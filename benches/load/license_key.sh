#!/bin/bash
# Prints a license key of the demo buyer, activated for fingerprint
# `load-test-machine`: starts `BIN serve` on DATA_DIR (seeded with `bazaar
# seed`), buys the cheapest customer-support product, pays with the
# sandbox card, waits for the license, activates it, checks it validates.
#   benches/load/license_key.sh target/release/bazaar /tmp/bazaar-load
set -euo pipefail
BIN=$1; DATA=$2; BASE=http://127.0.0.1:18085
BAZAAR_LOG=warn BAZAAR_DEMO_LOGINS=true "$BIN" serve --data-dir "$DATA" --http-addr 127.0.0.1:18085 --grpc-addr 127.0.0.1:18086 > "$DATA/key-serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf -o /dev/null $BASE/health && break; sleep 0.2; done
TOKEN=$(curl -s -X POST $BASE/v1/auth/login -H 'content-type: application/json' -d '{"email":"buyer@demo.bazaar","password":"demo-password"}' | jq -r .access_token)
PRODUCT=$(curl -s "$BASE/v1/products?category=customer-support&price_min=1&sort=price_asc" | jq -r '.items[0].id')
ORDER=$(curl -s -X POST $BASE/v1/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -H "Idempotency-Key: bench-$RANDOM" -d "{\"items\":[{\"product_id\":\"$PRODUCT\"}]}" | jq -r .id)
curl -s -X POST $BASE/v1/orders/$ORDER/pay -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"payment_method":"pm_card_visa"}' > /dev/null
for _ in $(seq 1 50); do
  KEY=$(curl -s $BASE/v1/licenses -H "authorization: Bearer $TOKEN" | jq -r '.items[0].key // empty')
  [ -n "$KEY" ] && break; sleep 0.2
done
LICENSE=$(curl -s $BASE/v1/licenses -H "authorization: Bearer $TOKEN" | jq -r '.items[0].id')
curl -s -X POST $BASE/v1/licenses/$LICENSE/activations -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"fingerprint":"load-test-machine"}' > /dev/null
V=$(curl -s -X POST $BASE/v1/licenses/validate -H 'content-type: application/json' -d "{\"key\":\"$KEY\",\"fingerprint\":\"load-test-machine\"}" | jq -r .valid)
[ "$V" = true ] || { echo "key not valid: $V" >&2; exit 1; }
echo "$KEY"
