-- Gives a delivery back for redelivery after a delay, if it is still current.
-- KEYS[1] the stream. ARGV: group, entry id, the receipt's delivery count,
-- the idle time to set in ms (ack wait - delay).
-- Reply: 1 when rescheduled, 0 when the receipt is stale.
local stream, group, id = KEYS[1], ARGV[1], ARGV[2]

local pending = redis.pcall('XPENDING', stream, group, id, id, 1)
if pending.err then
  -- The stream or the group is gone, and the delivery with them.
  if string.find(pending.err, 'NOGROUP', 1, true) then
    return 0
  end
  return pending
end
local entry = pending[1]
-- Acked (no longer pending) or delivered again since (count moved on).
if not entry or entry[4] ~= tonumber(ARGV[3]) then
  return 0
end
-- Backdate the delivery: XAUTOCLAIM (min idle = ack wait) takes it once
-- `delay` has passed. JUSTID leaves the delivery count alone; the reclaim
-- counts the redelivery. The owner stays the same consumer.
redis.call('XCLAIM', stream, group, entry[2], 0, id, 'IDLE', ARGV[4], 'JUSTID')
return 1
