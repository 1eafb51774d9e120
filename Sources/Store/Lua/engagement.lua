-- A click or open counted on its message (engagement_record and its cluster form), once per message
-- and link within the repeat window: the first of its kind marks the message, and the counts (total,
-- first per message, per variant and channel; a journey step's under its prefix) go into `acc`.
-- Returns 'repeat' (not counted), 'first' or 'again'.
local function countEngagement(acc, msg, guard, stats, kind, now, window, variant, channel, prefix)
  if redis.call('SET', guard, '1', 'NX', 'EX', window) == false then return 'repeat' end
  local first = redis.call('HSETNX', msg, kind == 'click' and 'clickedAt' or 'openedAt', now) == 1
  if stats ~= '' then
    local counts = countsOf(acc, stats)
    local function add(field) counts[field] = (counts[field] or 0) + 1 end
    local names = { kind .. 's' }
    if first then names[2] = kind == 'click' and 'clicked' or 'opened' end
    for _, n in ipairs(names) do
      add(prefix .. n)
      if prefix == '' then
        if variant ~= '' then add('v:' .. variant .. ':' .. n) end
        if channel ~= '' then add('ch:' .. channel .. ':' .. n) end
      end
    end
  end
  return first and 'first' or 'again'
end

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
  local acc = newCounters()
  local r = countEngagement(acc, keys[1], keys[2], keys[3] or '', kind, now, window, variant, channel, args[10] or '')
  if r == 'repeat' then return r end
  flushCounters(acc)
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
  return r
end)

-- engagement_count_slot (a cluster): engagement_record's count, in the message's slot; the caller then
-- records the interaction on the customer (customer_interaction) and the inbound stream. KEYS: the
-- slot's counter outbox, the message, the repeat guard. ARGV: kind, now, repeat window (s), variant,
-- channel, the stats key ('' = none), counter prefix. Returns as engagement_record.
register('engagement_count_slot', function(keys, args)
  local acc = newCounters()
  local r = countEngagement(acc, keys[2], keys[3], args[6], args[1], args[2], args[3], args[4], args[5], args[7])
  flushCounters(acc, keys[1])
  return r
end)

-- customer_interaction (a cluster): an interaction that is not a webhook's (a click, an open) on the
-- customer's timeline and last seen, in its slot. Sharded. KEYS: the customer's hash.
-- ARGV: customer, now, timeline cap, the timeline entry (JSON).
-- Returns { 1 } | { 'gone' } | { 'moved', survivor }, then what it emitted.
register('customer_interaction', sharded(function(keys, args)
  local id, live, survivor = hereOrMoved(args[1])
  if survivor then return { 'moved', survivor } end
  if not live then return { 'gone' } end
  pushTimeline(id, args[4], tonumber(args[3]))
  touchLastSeen(id, args[2])
  return { 1 }
end))
