-- GCRA over one key, a line-for-line port of bazaar_core's `decide`.
--
-- Redis's Lua numbers are doubles, exact only up to 2^53, while the core
-- works on u64 nanoseconds (about 1.8e18 since the epoch). Every instant and
-- duration is therefore held as two exact parts, {s, ns} = whole seconds and
-- the nanoseconds below them, and stored as the same decimal string the core
-- would print. Sums saturate at u64::MAX as the core's `saturating_add` does.

local BILLION = 1000000000
local U64_MAX = { 18446744073, 709551615 }

local function parse(text)
  if #text <= 9 then
    return { 0, tonumber(text) }
  end
  return { tonumber(string.sub(text, 1, -10)), tonumber(string.sub(text, -9)) }
end

local function format(v)
  if v[1] == 0 then
    return string.format('%.0f', v[2])
  end
  return string.format('%.0f', v[1]) .. string.format('%09.0f', v[2])
end

local function greater(a, b)
  return a[1] > b[1] or (a[1] == b[1] and a[2] > b[2])
end

local function add(a, b)
  local s, ns = a[1] + b[1], a[2] + b[2]
  if ns >= BILLION then
    s, ns = s + 1, ns - BILLION
  end
  local sum = { s, ns }
  if greater(sum, U64_MAX) then
    return U64_MAX
  end
  return sum
end

-- a - b for a > b.
local function sub(a, b)
  local s, ns = a[1] - b[1], a[2] - b[2]
  if ns < 0 then
    s, ns = s - 1, ns + BILLION
  end
  return { s, ns }
end

-- Returns {admitted (1|0), stored TAT before, now}; the caller recomputes
-- the full decision (remaining, retry-after) from the last two with the
-- core's `decide`, so the reply's numbers cannot drift from the core's.
-- `min_px` (ms, optional) keeps keys longer than their TAT needs: only the
-- tests' entry point sets it, because their injected `now` does not move
-- with the real clock that Redis expires keys by.
local function gcra(key, now, increment, capacity, min_px)
  local stored = redis.call('GET', key)
  local tat = { 0, 0 }
  if stored then
    tat = parse(stored)
  end
  local start = tat
  if greater(now, tat) then
    start = now
  end
  local new_tat = add(start, increment)
  local horizon = add(now, capacity)
  if greater(new_tat, horizon) then
    -- Denied: the contract says store nothing.
    return { 0, format(tat), format(now) }
  end
  if greater(new_tat, now) then
    -- Expire the key once its TAT falls behind the server clock: a key
    -- forgotten then behaves exactly like a fresh one. Rounded up so Redis
    -- never forgets a TAT that is still in the future.
    local ahead = sub(new_tat, now)
    local ms = ahead[1] * 1000 + math.ceil(ahead[2] / 1000000)
    if min_px and ms < min_px then
      ms = min_px
    end
    redis.call('SET', key, format(new_tat), 'PX', string.format('%.0f', ms))
  else
    -- Zero cells on an idle key: the new TAT is `now`, already in the past.
    redis.call('DEL', key)
  end
  return { 1, format(tat), format(now) }
end
