-- A goal event at `at` converts one campaign that reached the customer (or held it out) within its
-- window, once: the exposure entry gets the conversion time, the counts go into `acc`. Returns true
-- when it converted.
local function convertExposure(acc, exposures, stats, campaign, window, at)
  local entry = redis.call('HGET', exposures, campaign)
  if not entry then return false end
  local since, group, done = string.match(entry, '^(%d+)|([^|]+)|?(%d*)$')
  since = tonumber(since)
  if not (since and done == '' and at >= since and at <= since + window) then return false end
  redis.call('HSET', exposures, campaign, entry .. '|' .. at)
  local counts = countsOf(acc, stats)
  local function add(field) counts[field] = (counts[field] or 0) + 1 end
  if group == 'holdout' then
    add('holdoutConverted')
  else
    add('converted')
    add('v:' .. group .. ':converted')
  end
  return true
end

-- conversion_record: a goal event of a customer, attributed to the campaigns that reached it (or held
-- it out) within their goal's window, once per campaign and customer: the exposure entry
-- (Keys.customerCampaigns) gets the conversion time, and the campaign's counters grow: converted and
-- v:<variant>:converted, or holdoutConverted.
-- KEYS: the customer's exposures, then each candidate campaign's stats hash.
-- ARGV: event time (ms), then per candidate: campaign id, window (ms).
-- Returns the campaigns the event converted.
register('conversion_record', function(keys, args)
  local at = tonumber(args[1])
  local converted = {}
  local acc = newCounters()
  for c = 1, #keys - 1 do
    local campaign = args[2 * c]
    if convertExposure(acc, keys[1], keys[c + 1], campaign, tonumber(args[2 * c + 1]), at) then converted[#converted + 1] = campaign end
  end
  flushCounters(acc)
  return converted
end)

-- conversion_record_slot (a cluster): conversion_record in the customer's slot, the counts in the
-- slot's counter outbox (MessageStore flushes it). KEYS: the slot's counter outbox, the customer's
-- exposures. ARGV: event time (ms), then per candidate: campaign id, window (ms), its stats key.
register('conversion_record_slot', function(keys, args)
  local at = tonumber(args[1])
  local converted = {}
  local acc = newCounters()
  for c = 2, #args, 3 do
    if convertExposure(acc, keys[2], args[c + 2], args[c], tonumber(args[c + 1]), at) then converted[#converted + 1] = args[c] end
  end
  flushCounters(acc, keys[1])
  return converted
end)
