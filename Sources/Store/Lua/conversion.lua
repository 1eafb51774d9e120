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
  for c = 1, #keys - 1 do
    local campaign, window = args[2 * c], tonumber(args[2 * c + 1])
    local entry = redis.call('HGET', keys[1], campaign)
    if entry then
      local since, group, done = string.match(entry, '^(%d+)|([^|]+)|?(%d*)$')
      since = tonumber(since)
      if since and done == '' and at >= since and at <= since + window then
        redis.call('HSET', keys[1], campaign, entry .. '|' .. at)
        if group == 'holdout' then
          redis.call('HINCRBY', keys[c + 1], 'holdoutConverted', 1)
        else
          redis.call('HINCRBY', keys[c + 1], 'converted', 1)
          redis.call('HINCRBY', keys[c + 1], 'v:' .. group .. ':converted', 1)
        end
        converted[#converted + 1] = campaign
      end
    end
  end
  return converted
end)
