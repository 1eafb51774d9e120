-- engagement_record: a click on a tracked link or an open of an email's pixel (LinkTokens), counted
-- once per message and link within the repeat window: the campaign's counters (total and first per
-- message, per variant and channel), and the recipient's interaction (timeline, lastSeen,
-- stream:inbound for scoring).
-- KEYS: the message hash, the repeat guard (Keys.engagementGuard), then the campaign's (or the
-- journey's) stats hash when the message belongs to one.
-- ARGV: kind (click | open), now, repeat window (s), customer id, variant, channel, timeline
-- cap, stream max, payload (JSON), counter prefix ('' for a campaign, s:<step>: for a journey).
-- Returns 'repeat' (not counted), 'first' (the message's first of that kind) or 'again'.
register('engagement_record', function(keys, args)
  local kind, now, window, cid, variant, channel = args[1], args[2], args[3], args[4], args[5], args[6]
  local cap, streamMax, payload = tonumber(args[7]), args[8], args[9]
  if redis.call('SET', keys[2], '1', 'NX', 'EX', window) == false then return 'repeat' end
  local first = redis.call('HSETNX', keys[1], kind == 'click' and 'clickedAt' or 'openedAt', now) == 1
  if keys[3] then
    local total, unique = kind .. 's', kind == 'click' and 'clicked' or 'opened'
    local names = { total }
    if first then names[2] = unique end
    local prefix = args[10] or ''
    for _, n in ipairs(names) do
      redis.call('HINCRBY', keys[3], prefix .. n, 1)
      if prefix == '' then
        if variant ~= '' then redis.call('HINCRBY', keys[3], 'v:' .. variant .. ':' .. n, 1) end
        if channel ~= '' then redis.call('HINCRBY', keys[3], 'ch:' .. channel .. ':' .. n, 1) end
      end
    end
  end
  if cid ~= '' then
    local live
    cid, live = resolveLive(cid)
    if live then
      local itype = 'message.' .. kind
      pushTimeline(cid, '{"at":' .. now .. ',"type":"' .. itype .. '","data":' .. payload .. '}', cap)
      touchLastSeen(cid, now)
      redis.call('XADD', 'stream:inbound', 'MAXLEN', '~', streamMax, '*', 'type', itype, 'customer', cid,
        'payload', payload, 'at', now, 'source', 'link')
    end
  end
  if first then return 'first' end
  return 'again'
end)
