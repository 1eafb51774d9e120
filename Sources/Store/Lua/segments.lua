-- segment_put: saves a segment under its name, unless that would make more than the cap (a new name
-- when the cap is reached). KEYS: the segments hash (Keys.segments).
-- ARGV: the name, the segment as JSON, the cap. Returns 1 (created), 0 (replaced) or -1 (full).
register('segment_put', function(keys, args)
  local name, json, cap = args[1], args[2], tonumber(args[3])
  local exists = redis.call('HEXISTS', keys[1], name)
  if exists == 0 and redis.call('HLEN', keys[1]) >= cap then return -1 end
  redis.call('HSET', keys[1], name, json)
  return 1 - exists
end)
