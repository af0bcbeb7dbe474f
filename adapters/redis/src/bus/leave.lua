-- Removes a consumer group (its pending list goes with it) and its entry in
-- the fan-out registry. KEYS[1] the stream, KEYS[2] the fan-out registry.
-- ARGV: group. A missing stream or group is nothing to remove.
local stream, registry, group = KEYS[1], KEYS[2], ARGV[1]
if redis.call('EXISTS', stream) == 1 then
  redis.call('XGROUP', 'DESTROY', stream, group)
end
redis.call('ZREM', registry, group)
return 1
