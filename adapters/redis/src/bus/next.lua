-- The next delivery for one member of a consumer group, in one atomic step.
-- KEYS[1] the stream. ARGV: group, consumer, min idle in ms (the ack wait).
-- Reply: { entry id, delivery count, event JSON } or nil when nothing is due.
local stream, group, consumer, ack_wait = KEYS[1], ARGV[1], ARGV[2], ARGV[3]

-- Create the group on first use, at id 0 so it sees every retained entry.
local created = redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, 'BUSYGROUP', 1, true) then
  return created
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
