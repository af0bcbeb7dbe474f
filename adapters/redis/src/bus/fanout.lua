-- Opens a fan-out group, first removing the fan-out groups whose processes
-- stopped asking for messages (their deadline in the registry has passed).
-- KEYS[1] the stream, KEYS[2] the fan-out registry (a sorted set: group ->
-- deadline in ms of server time). ARGV: group, idle limit in ms.
-- Reply: the number of idle groups removed.
local stream, registry, group, idle = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local removed = 0
for _, idle_group in ipairs(redis.call('ZRANGEBYSCORE', registry, '-inf', now)) do
  if idle_group ~= group then
    redis.pcall('XGROUP', 'DESTROY', stream, idle_group)
    redis.call('ZREM', registry, idle_group)
    removed = removed + 1
  end
end

-- At '$': the group sees what is published from now on.
local created = redis.pcall('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, 'BUSYGROUP', 1, true) then
  return created
end
redis.call('ZADD', registry, now + idle, group)
return removed
