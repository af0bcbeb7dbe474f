-- wrk script: failed logins as a credential-stuffing botnet sends them:
-- each from another client address (X-Forwarded-For, believed because the
-- server trusts 127.0.0.1 as a proxy) for another unknown account, so no
-- sign-in quota turns them away and each costs one argon2 verification.
--   wrk -t1 -c16 -d10s -s benches/load/login_storm.lua http://127.0.0.1:18081
math.randomseed(os.time())

function request()
  local ip = string.format("198.18.%d.%d", math.random(0, 255), math.random(1, 254))
  local body = string.format('{"email":"user%d@storm.test","password":"wrong-password-%d"}',
    math.random(1, 10000000), math.random(1, 1000000))
  return wrk.format("POST", "/v1/auth/login",
    { ["content-type"] = "application/json", ["x-forwarded-for"] = ip }, body)
end

local statuses = {}

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("logins: %d answered, p50 %.1f ms, p99 %.1f ms\n",
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  io.write(string.format("login errors (socket): %d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
