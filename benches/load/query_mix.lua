-- wrk script: GET each request path of a query mix file in turn (one path a
-- line, as `cargo run -p bazaar-tantivy --example query_mix` prints them).
-- Each thread starts at its own offset so the threads do not move in step.
--   MIX=paths.txt wrk -t2 -c32 -d10s --latency -s benches/load/query_mix.lua http://127.0.0.1:8080
local paths = {}
for line in io.lines(os.getenv("MIX") or "paths.txt") do
  if #line > 0 then paths[#paths + 1] = line end
end
assert(#paths > 0, "no paths in MIX")

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
  return wrk.format("GET", paths[(counter % #paths) + 1])
end

-- Non-2xx answers and socket errors, so a run that measured errors shows it.
function done(summary, latency, requests)
  io.write(string.format("distinct paths: %d\n", #paths))
  io.write(string.format("non-2xx or socket errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
