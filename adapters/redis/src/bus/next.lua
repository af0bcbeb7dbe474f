-- The next delivery for one member of a consumer group, in one atomic step.
-- KEYS[1] the stream, KEYS[2] the fan-out registry. ARGV: group, consumer,
-- min idle in ms (the ack wait), and for a fan-out group its idle limit in
-- ms ('0' for a durable group).
-- Reply: { entry id, delivery count, event JSON } or nil when nothing is due.
local stream, registry = KEYS[1], KEYS[2]
local group, consumer, ack_wait, fanout_idle = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

-- Create the group on first use: a durable group at id 0, so it sees every
-- retained entry; a fan-out group (removed while its process was away) at
-- '$', as when it was opened.
local start = '0'
if fanout_idle > 0 then
  start = '$'
end
local created = redis.pcall('XGROUP', 'CREATE', stream, group, start, 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, 'BUSYGROUP', 1, true) then
  return created
end
-- A fan-out group in use moves its deadline on with every request.
if fanout_idle > 0 then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  redis.call('ZADD', registry, now + fanout_idle, group)
end

-- The envelope field of an entry ('' when absent: Rust reports it).
local function event_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'event' then
      return fields[i + 1]
    end
  end
  return ''
end

-- Redeliveries first: an entry idle for the ack wait was either left
-- unacknowledged (its consumer died or is stuck) or nacked with a delay that
-- has now passed (nack backdates its idle time). COUNT 1 examines at most 10
-- pending entries per call, so follow the cursor through the whole list.
local cursor = '0-0'
repeat
  local reply = redis.call('XAUTOCLAIM', stream, group, consumer, ack_wait, cursor, 'COUNT', 1)
  cursor = reply[1]
  local entry = reply[2][1]
  -- An entry trimmed while pending is nil on Redis 6.2 (7.x drops it from
  -- the pending list and lists its id in reply[3]); there is nothing to hand out.
  if entry and entry[2] then
    -- XAUTOCLAIM has just counted this delivery.
    local pending = redis.call('XPENDING', stream, group, entry[1], entry[1], 1)
    return { entry[1], pending[1][4], event_of(entry[2]) }
  end
until cursor == '0-0'

-- Then the oldest never-delivered entry. No BLOCK: scripts never block.
local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
if read then
  local entry = read[1][2][1]
  return { entry[1], 1, event_of(entry[2]) }
end
return nil
