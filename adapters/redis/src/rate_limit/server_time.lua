
-- KEYS[1] = the limiter key; ARGV[1] = n·T, ARGV[2] = b·T (ns, decimal).
-- Before Redis 5 a script that reads TIME must switch to effects
-- replication before writing; from Redis 7 the call is a deprecated no-op.
if redis.replicate_commands then
  redis.replicate_commands()
end
local time = redis.call('TIME')
local now = { tonumber(time[1]), tonumber(time[2]) * 1000 }
return gcra(KEYS[1], now, parse(ARGV[1]), parse(ARGV[2]))
