-- wrk script: POST /v1/licenses/validate with the key in $BAZAAR_LICENSE_KEY.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"key":"' .. os.getenv("BAZAAR_LICENSE_KEY") .. '"}'
