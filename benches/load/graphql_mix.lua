-- wrk script: POST each GraphQL body of a file in turn (one JSON document a
-- line, as benches/load/graphql_mix.py prints them) to the path wrk is given.
-- Each thread starts at its own offset so the threads do not move in step.
--   BODIES=graphql.txt wrk -t2 -c32 -d10s --latency -s benches/load/graphql_mix.lua http://127.0.0.1:8080/graphql
local bodies = {}
for line in io.lines(os.getenv("BODIES") or "graphql.txt") do
  if #line > 0 then bodies[#bodies + 1] = line end
end
assert(#bodies > 0, "no bodies in BODIES")

local counter = 1
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 997)
  threads[#threads + 1] = thread
end

function init(args)
  counter = offset or 0
end

function request()
  counter = counter + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, bodies[(counter % #bodies) + 1])
end

-- GraphQL answers errors with 200 and an "errors" list, which wrk does not
-- see: benches/load/graphql_search.sh sends every body once and checks first.
function done(summary, latency, requests)
  io.write(string.format("distinct bodies: %d\n", #bodies))
  io.write(string.format("non-2xx or socket errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
