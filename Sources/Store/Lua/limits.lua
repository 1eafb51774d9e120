-- Shared rate limits: the GCRA limiter every process's sends go through (RateLimiter) and the CRM
-- adapters' call budgets (CRMBudget). Every key is passed in KEYS.

-- rate_limit_take: KEYS: GCRA key, state hash. ARGV: base interval µs, burst, cost, reserve-ahead µs, probe hold µs.
-- Returns {1, factor*1000, failing, probe} allowed, {0, µs} wait, {2, µs} suspended, {4, µs} circuit
-- open, {3, µs, factor*1000, failing, probe} reserved: the slot is taken and the caller sends after
-- sleeping that long (so a caller's wake-up lateness costs no slot). While a probe is out, the others
-- wait (at most half a second at a time) for its answer.
register('rate_limit_take', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local st = redis.call('HMGET', keys[2], 'factor', 'pauseUntil', 'suspendUntil', 'openUntil', 'probeUntil', 'failures')
  local factor = tonumber(st[1] or '1')
  local suspend = tonumber(st[3] or '0')
  if suspend > now then return { 2, suspend - now } end
  local probe = 0
  local open = tonumber(st[4] or '0')
  if open > 0 then
    if open > now then return { 4, open - now } end
    local held = tonumber(st[5] or '0')
    if held > now then return { 0, math.min(held - now, 500000) } end
    probe = 1
  end
  local failing = tonumber(st[6] or '0') > 0 and 1 or 0
  local pause = tonumber(st[2] or '0')
  if pause > now then return { 0, pause - now } end
  local interval = math.floor(tonumber(args[1]) / factor)
  local burst, cost = tonumber(args[2]), tonumber(args[3])
  local tat = tonumber(redis.call('GET', keys[1]) or '0')
  if tat < now then tat = now end
  local newTat = tat + interval * cost
  local allowAt = newTat - interval * burst
  if allowAt > now + tonumber(args[4]) then return { 0, allowAt - now } end
  redis.call('SET', keys[1], string.format('%d', newTat), 'PX', math.ceil((newTat - now) / 1000) + 1000)
  if probe == 1 then redis.call('HSET', keys[2], 'probeUntil', string.format('%d', now + tonumber(args[5] or '15000000'))) end
  if allowAt > now then return { 3, allowAt - now, math.floor(factor * 1000), failing, probe } end
  return { 1, math.floor(factor * 1000), failing, probe }
end)

-- rate_limit_react: KEYS: state hash. ARGV: signal (throttle|success|quota|failure), value (retry-after µs |
-- suspend-until µs since epoch | 1 for a probe's failure), min factor, circuit failures, open ms,
-- max open ms.
register('rate_limit_react', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local factor = tonumber(redis.call('HGET', keys[1], 'factor') or '1')
  if args[1] == 'throttle' then
    factor = math.max(tonumber(args[3]), factor / 2)
    local pause = now + math.max(tonumber(args[2]), 1000000)
    redis.call('HSET', keys[1], 'factor', tostring(factor), 'pauseUntil', string.format('%d', pause), 'lastRaise', string.format('%d', now))
  elseif args[1] == 'success' then
    redis.call('HDEL', keys[1], 'failures', 'openUntil', 'openMs', 'probeUntil')
    if factor >= 1 then return '1' end
    local last = tonumber(redis.call('HGET', keys[1], 'lastRaise') or '0')
    if now - last < 1000000 then return tostring(factor) end
    factor = math.min(1, factor * 1.25)
    redis.call('HSET', keys[1], 'factor', tostring(factor), 'lastRaise', string.format('%d', now))
  elseif args[1] == 'quota' then
    redis.call('HSET', keys[1], 'suspendUntil', args[2])
  elseif args[1] == 'failure' then
    local n = redis.call('HINCRBY', keys[1], 'failures', 1)
    local open = tonumber(redis.call('HGET', keys[1], 'openUntil') or '0')
    local ms = nil
    if open > 0 and args[2] == '1' then
      ms = math.min(tonumber(args[6]), 2 * tonumber(redis.call('HGET', keys[1], 'openMs') or args[5]))
    elseif open == 0 and n >= tonumber(args[4]) then
      ms = tonumber(args[5])
    end
    if ms then
      redis.call('HSET', keys[1], 'openMs', string.format('%d', ms), 'openUntil', string.format('%d', now + ms * 1000))
      redis.call('HDEL', keys[1], 'probeUntil')
    end
  end
  redis.call('PEXPIRE', keys[1], 172800000)
  return tostring(factor)
end)

-- crm_budget_take: KEYS: window set, pause, then for a CRM with a concurrency cap or a daily quota
-- the calls on the wire (Keys.crmCalls) and today's count (Keys.crmDaily).
-- ARGV: requests, window µs, unique member, then with those keys: the concurrency cap (0 = none), how
-- long a call counts as on the wire at most (µs), the daily quota (0 = none), µs until it resets.
-- Returns µs to wait (0 = go, counted). A spent daily quota pauses every process until the reset.
register('crm_budget_take', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local pause = tonumber(redis.call('GET', keys[2]) or '0')
  if pause > now then return pause - now end
  local window = tonumber(args[2])
  redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now - window)
  if redis.call('ZCARD', keys[1]) >= tonumber(args[1]) then
    local oldest = redis.call('ZRANGE', keys[1], 0, 0, 'WITHSCORES')
    return math.max(tonumber(oldest[2]) + window - now, 1000)
  end
  if keys[3] then
    local concurrent, lease, daily, reset = tonumber(args[4]), tonumber(args[5]), tonumber(args[6]), tonumber(args[7])
    if daily > 0 and tonumber(redis.call('GET', keys[4]) or '0') >= daily then
      redis.call('SET', keys[2], string.format('%d', now + reset), 'PX', math.ceil(reset / 1000) + 1000)
      return reset
    end
    if concurrent > 0 then
      redis.call('ZREMRANGEBYSCORE', keys[3], '-inf', now)
      if redis.call('ZCARD', keys[3]) >= concurrent then return 20000 end
      redis.call('ZADD', keys[3], now + lease, args[3])
      redis.call('PEXPIRE', keys[3], math.ceil(lease / 1000) + 1000)
    end
    if daily > 0 then
      redis.call('INCR', keys[4])
      redis.call('PEXPIRE', keys[4], math.ceil(reset / 1000) + 86400000)
    end
  end
  redis.call('ZADD', keys[1], now, args[3])
  redis.call('PEXPIRE', keys[1], math.ceil(window / 1000) + 1000)
  return 0
end)

-- crm_budget_stamp: a counted call is about to go: its time in the window becomes now (Redis's
-- clock), so a call whose batch took long to prepare is not counted from before it went. KEYS: the
-- window set. ARGV: the call's member.
register('crm_budget_stamp', function(keys, args)
  local t = redis.call('TIME')
  redis.call('ZADD', keys[1], tonumber(t[1]) * 1000000 + tonumber(t[2]), args[1])
  return 1
end)

-- crm_budget_pause: the CRM said to slow down: nobody calls before ARGV[1] µs from now (a pause only
-- ever lengthens). KEYS: the pause key.
register('crm_budget_pause', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local untilUs = now + tonumber(args[1])
  local cur = tonumber(redis.call('GET', keys[1]) or '0')
  if untilUs > cur then redis.call('SET', keys[1], string.format('%d', untilUs), 'PX', math.ceil(tonumber(args[1]) / 1000) + 1000) end
  return 1
end)

-- crm_budget_used: calls counted in the current window. KEYS: the window set. ARGV: the window µs.
register('crm_budget_used', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return redis.call('ZCOUNT', keys[1], now - tonumber(args[1]), '+inf')
end)
