-- customer_patch: profile fields, time zone and consent of one customer, validated by the gateway
-- (CustomerAttributes) before they get here; one atomic step, then reindex.
-- Sharded (customer_base): on a cluster the caller clears the opt-outs after, from their own slots.
-- KEYS: the customer hash, then (single Redis) the address opt-outs (Keys.optOut) a granted consent
-- clears. ARGV: id, now ms, timeline cap, timeline entry ('' = none), then counted groups:
--   n, n field/value pairs to set; n, n fields to remove; n, n channel/state/source triples.
-- Returns { 'ok' }, { 'merged', survivor (on a cluster: the next hop) } or { 'notfound' }, then
-- what it emitted.
register('customer_patch', sharded(function(keys, args)
  local id, now, cap, entry = args[1], args[2], tonumber(args[3]), args[4]
  local h = redis.call('HMGET', keys[1], 'createdAt', 'mergedInto')
  if h[2] then
    if shard == '' then return { 'merged', (resolveLive(h[2])) } end
    return { 'merged', h[2] }
  end
  if not h[1] then return { 'notfound' } end
  local i = 5
  local n = tonumber(args[i])
  if n > 0 then redis.call('HSET', keys[1], unpack(args, i + 1, i + 2 * n)) end
  i = i + 1 + 2 * n
  n = tonumber(args[i])
  if n > 0 then redis.call('HDEL', keys[1], unpack(args, i + 1, i + n)) end
  i = i + 1 + n
  n = tonumber(args[i])
  for c = 0, n - 1 do
    local channel, state, source = args[i + 1 + 3 * c], args[i + 2 + 3 * c], args[i + 3 + 3 * c]
    redis.call('HSET', keys[1], 'consent.' .. channel, state .. '|' .. now, 'consentSource.' .. channel, source)
    pushTimeline(id, cjson.encode({ at = tonumber(now), type = 'consent.changed',
      data = { channel = channel, state = state, source = source } }), cap)
  end
  if n > 0 then
    for k = 2, #keys do redis.call('DEL', keys[k]) end
  end
  if entry ~= '' then pushTimeline(id, entry, cap) end
  redis.call('HSET', keys[1], 'updatedAt', now)
  reindex(id)
  return { 'ok' }
end))
