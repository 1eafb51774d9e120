-- Campaign planning and its messages: a chunk of the audience planned into references on the
-- outbound streams (CampaignPlanner), and a reference turned into a message when a sender takes it
-- (CampaignMaterializer). Counters follow the campaign's shape: overall, per variant, per channel.

-- Adds n (default 1) to a counter, its variant's and its channel's ('' = not that dimension).
local function campaignCount(counts, metric, variant, channel, n)
  n = n or 1
  counts[metric] = (counts[metric] or 0) + n
  if variant ~= '' then local k = 'v:' .. variant .. ':' .. metric; counts[k] = (counts[k] or 0) + n end
  if channel ~= '' then local k = 'ch:' .. channel .. ':' .. metric; counts[k] = (counts[k] or 0) + n end
end

-- One stats hash's counts written (outbound.lua's flushCounters, which writes a batch's).
local function flushCounts(stats, counts) flushCounters({ counts = { [stats] = counts }, expire = {} }) end

-- campaign_plan_chunk: one chunk of the audience snapshot, applied once: only while this planner holds
-- the lease, the campaign runs and the checkpoint is still the chunk's cursor. A recipient becomes
-- a reference on its channel's stream (about 120 bytes: message id, campaign, variant, customer,
-- channel, planning time; rendered when sent), a skip, a hold-out exposure, or a member of its owner's WeCom group send.
-- KEYS: the campaign, its stats, the planner lease, then each record's keys in order: r: the channel's
-- stream; h: the customer's campaign exposures (Keys.customerCampaigns), the customer; w: the campaign's groups,
-- the group's recipients; s: none.
-- ARGV: owner, expected cursor, next cursor, now, campaign id, then the records:
-- r, variant, channel, message id, customer | s, variant, channel, reason | h, variant |
-- w, variant, group, external user id, customer. On a cluster, references and hold-outs are written
-- in their own slots first (campaign_plan_refs, campaign_holdout) and come as R (like r, no key) and
-- H, variant (no keys): counted here.
-- Returns { 'ok' }, { 'stopped' } (not running) or { 'lease' } (another planner or checkpoint).
register('campaign_plan_chunk', function(keys, args)
  if redis.call('GET', keys[3]) ~= args[1] then return { 'lease' } end
  local c = redis.call('HMGET', keys[1], 'state', 'cursor', 'planDone')
  if c[1] ~= 'running' then return { 'stopped' } end
  if c[2] ~= args[2] or c[3] == '1' then return { 'lease' } end
  local now, campaign = args[4], args[5]
  local counts = {}
  local i, k = 6, 4
  while i <= #args do
    local kind, variant = args[i], args[i + 1]
    if kind == 'r' or kind == 'R' then
      -- Counted per channel when it becomes a message (its channel can still change then). R: a
      -- cluster's reference, appended by campaign_plan_refs already (counted only).
      if kind == 'r' then
        redis.call('XADD', keys[k], '*', 'id', args[i + 3], 'c', campaign, 'v', variant, 'u', args[i + 4], 'ch', args[i + 2], 't', now)
        k = k + 1
      end
      for _, metric in ipairs({ 'planned', 'queued', 'open' }) do campaignCount(counts, metric, variant, '') end
      i = i + 5
    elseif kind == 'H' then
      -- A cluster's hold-out member, its exposure recorded by campaign_holdout already.
      campaignCount(counts, 'planned', variant, '')
      campaignCount(counts, 'holdout', variant, '')
      i = i + 2
    elseif kind == 'w' then
      campaignCount(counts, 'planned', variant, 'wecom')
      redis.call('SADD', keys[k], args[i + 2])
      if redis.call('HSETNX', keys[k + 1], args[i + 3], args[i + 4]) == 1 then
        campaignCount(counts, 'queued', variant, 'wecom')
        campaignCount(counts, 'open', variant, 'wecom')
      end
      i, k = i + 5, k + 2
    elseif kind == 's' then
      campaignCount(counts, 'planned', variant, args[i + 2])
      campaignCount(counts, 'skipped', variant, args[i + 2])
      counts['skip:' .. args[i + 3]] = (counts['skip:' .. args[i + 3]] or 0) + 1
      i = i + 4
    else
      -- A hold-out member's exposure starts now: its goal events count against the campaign's. A
      -- customer gone since the snapshot (record deleted or merged) is skipped instead.
      campaignCount(counts, 'planned', variant, '')
      local cust = redis.call('HMGET', keys[k + 1], 'createdAt', 'mergedInto')
      if cust[1] and not cust[2] then
        campaignCount(counts, 'holdout', variant, '')
        redis.call('HSETNX', keys[k], campaign, now .. '|holdout')
      else
        campaignCount(counts, 'skipped', variant, '')
        counts['skip:customer_gone'] = (counts['skip:customer_gone'] or 0) + 1
      end
      i, k = i + 2, k + 2
    end
  end
  flushCounts(keys[2], counts)
  redis.call('HSET', keys[1], 'cursor', args[3])
  if args[3] == '0' then redis.call('HSET', keys[1], 'planDone', '1') end
  redis.call('PEXPIRE', keys[3], 15000)
  return { 'ok' }
end)

-- campaign_plan_refs (a cluster): one chunk's references on one stream, appended once however often
-- the chunk is planned again (a planner that stopped before campaign_plan_chunk): the mark is in
-- the stream's slot (Keys.streamAppended of plan:<campaign>:<cursor>).
-- KEYS: the stream, the mark. ARGV: the mark's TTL (s), now, campaign, then per reference: message
-- id, variant, customer, channel. Returns how many were appended (0: appended before).
register('campaign_plan_refs', function(keys, args)
  if not redis.call('SET', keys[2], '1', 'NX', 'EX', args[1]) then return 0 end
  local n = 0
  for i = 4, #args, 4 do
    redis.call('XADD', keys[1], '*', 'id', args[i], 'c', args[3], 'v', args[i + 1], 'u', args[i + 2], 'ch', args[i + 3], 't', args[2])
    n = n + 1
  end
  return n
end)

-- campaign_holdout (a cluster): a hold-out member's exposure starts now, in its own slot. KEYS: the
-- customer's campaign exposures (Keys.customerCampaigns), the customer. ARGV: campaign, now.
-- Returns 1, or 0 when the customer is gone since the snapshot (record deleted or merged).
register('campaign_holdout', function(keys, args)
  local cust = redis.call('HMGET', keys[2], 'createdAt', 'mergedInto')
  if not cust[1] or cust[2] then return 0 end
  redis.call('HSETNX', keys[1], args[1], args[2] .. '|holdout')
  return 1
end)

-- One reference made a message, refused, or settled (campaign_message_materialize and its cluster
-- form). `r`: msg, index, customer, counts (the campaign's, in the batch's counters), kind, entryId,
-- id, variant, channel, reason, and `args` with the fields at first..last. `entryGone()`: whether the
-- entry left its stream (asked only when the customer is gone; nil = not known, ask the caller);
-- `ack()`: the entry's acknowledgement. Returns 2, 1, 0 as the function, or 3 = ask the stream.
local function materializeReference(r, args, first, last, ttl, entryGone, ack)
  local counts = r.counts
  local reason = r.reason
  -- A customer still on record was not erased, so no purge can have taken the entry: only
  -- otherwise is the stream asked.
  local live = redis.call('HEXISTS', r.customer, 'createdAt') == 1
  if not live then
    local gone = entryGone()
    if gone == nil then return 3 end
    if gone then return 0 end
  end
  if redis.call('EXISTS', r.msg) == 1 then
    local m = redis.call('HMGET', r.msg, 'entry', 'state', 'refused')
    if m[1] == r.entryId and not m[3] then return 1 end  -- created from this entry by a sender that stopped: go on with it
    if m[1] ~= r.entryId then
      for _, metric in ipairs({ 'planned', 'queued', 'open' }) do campaignCount(counts, metric, r.variant, '', -1) end
    end
    ack()  -- its own refusal settled already, or a repeat
    return 0
  end
  if r.kind == 'q' and not live then reason = 'erased' end
  if not reason then
    redis.call('HSET', r.msg, 'entry', r.entryId, unpack(args, first, last))
    redis.call('ZADD', r.index, redis.call('HGET', r.msg, 'createdAt'), r.id)
    redis.call('PEXPIRE', r.index, ttl)
    for _, metric in ipairs({ 'planned', 'queued', 'open' }) do
      local f = 'ch:' .. r.channel .. ':' .. metric
      counts[f] = (counts[f] or 0) + 1
    end
    return 2
  end
  if r.channel ~= '' then counts['ch:' .. r.channel .. ':planned'] = (counts['ch:' .. r.channel .. ':planned'] or 0) + 1 end
  campaignCount(counts, 'queued', r.variant, '', -1)
  campaignCount(counts, 'open', r.variant, '', -1)
  campaignCount(counts, 'skipped', r.variant, r.channel)
  counts['skip:' .. reason] = (counts['skip:' .. reason] or 0) + 1
  -- A small record of the refusal (no personal data), so that a second reference to this
  -- recipient is settled as a duplicate rather than counted again.
  redis.call('HSET', r.msg, 'state', 'skipped', 'refused', reason, 'entry', r.entryId)
  redis.call('PEXPIRE', r.msg, ttl)
  ack()
  return 0
end

-- campaign_message_materialize: references a sender took, made messages. Each was rendered with
-- the customer as they are now (or refused: consent, address, a variable missing, customer gone).
-- A message is created once, marked with the entry that created it, and indexed under its customer;
-- counted on its channel (planning could not know it). A refusal, a customer erased since the read,
-- or a second reference to a recipient who already has the message or a refusal (a snapshot scan may
-- return a member twice), is settled here: its planning counts are taken back and its entry
-- acknowledged. A refusal leaves a small record (state skipped, `refused`: the reason, the entry)
-- for the index TTL, so a second reference finds it.
-- An entry no longer on its stream (its customer erased) was settled by the erasure's purge: nothing
-- is done.
-- KEYS, 5 per reference: the message, the customer's message index, the campaign's stats, the
-- entry's stream, the customer.
-- ARGV: consumer group, index TTL (ms), then per reference: kind (q message, s refusal), entry id,
-- message id, variant, channel, then q: field count, fields | s: reason.
-- Returns per reference 2 (a message made now), 1 (one made before from this entry) or 0 (settled).
register('campaign_message_materialize', function(keys, args)
  local group, ttl = args[1], args[2]
  local out = {}
  local acc = newCounters()  -- stats key -> counts, written once per batch
  local i, k = 3, 1
  while i <= #args do
    local kind = args[i]
    local next = kind == 'q' and i + 6 + tonumber(args[i + 5]) or i + 6
    local r = {
      msg = keys[k], index = keys[k + 1], customer = keys[k + 4], counts = countsOf(acc, keys[k + 2]), kind = kind, entryId = args[i + 1],
      id = args[i + 2], variant = args[i + 3], channel = args[i + 4], reason = kind == 's' and args[i + 5] or nil,
    }
    local stream = keys[k + 3]
    out[#out + 1] = materializeReference(r, args, i + 6, next - 1, ttl,
      function() return #redis.call('XRANGE', stream, r.entryId, r.entryId) == 0 end,
      function() ackEntry(stream, group, r.entryId) end)
    i, k = next, k + 5
  end
  flushCounters(acc)
  return out
end)

-- campaign_message_materialize_slot (a cluster): campaign_message_materialize for the references of
-- one slot's customers. Stream entries are not touched: the caller acknowledges those answered 0
-- afterwards, and for a reference answered 3 (its customer gone) reads whether its entry is still on
-- its stream and calls again with that known. Counts go to the slot's counter outbox.
-- KEYS: 1 the slot's counter outbox, then 3 per reference: the message, the customer's message index,
-- the customer. ARGV: index TTL (ms), then per reference: kind (q, s), entry id, message id, variant,
-- channel, the campaign's stats key, the entry (1 still on its stream, 0 gone, '' not known), then
-- q: field count, fields | s: reason. Returns per reference 2, 1, 0 (acknowledge its entry) or 3.
register('campaign_message_materialize_slot', function(keys, args)
  local ttl = args[1]
  local out = {}
  local acc = newCounters()
  local i, k = 2, 2
  while i <= #args do
    local kind = args[i]
    local next = kind == 'q' and i + 8 + tonumber(args[i + 7]) or i + 8
    local r = {
      msg = keys[k], index = keys[k + 1], customer = keys[k + 2], counts = countsOf(acc, args[i + 5]), kind = kind, entryId = args[i + 1],
      id = args[i + 2], variant = args[i + 3], channel = args[i + 4], reason = kind == 's' and args[i + 7] or nil,
    }
    local present = args[i + 6]
    out[#out + 1] = materializeReference(r, args, i + 8, next - 1, ttl,
      function() if present == '' then return nil end return present == '0' end, function() end)
    i, k = next, k + 3
  end
  flushCounters(acc, keys[1])
  return out
end)

-- campaign_reference_erase: a queued reference to an erased person (CustomerErasure's purge) goes,
-- counted as skipped (reason erased) as a sender would have, so the campaign's open count reaches
-- zero. When a message was already made from it, the entry is only deleted (the message's own end
-- is counted); when the entry is gone, a sender settled it.
-- KEYS: the entry's stream, the campaign's stats, the message. ARGV: entry id, variant, consumer group.
-- Returns 1 when counted.
-- A reference to an erased person counted as skipped (reason erased).
local function countErasedReference(counts, variant)
  campaignCount(counts, 'open', variant, '', -1)
  campaignCount(counts, 'skipped', variant, '')
  counts['skip:erased'] = (counts['skip:erased'] or 0) + 1
end

register('campaign_reference_erase', function(keys, args)
  if redis.call('EXISTS', keys[3]) == 1 then
    redis.call('XDEL', keys[1], args[1])
    return 0
  end
  if #redis.call('XRANGE', keys[1], args[1], args[1]) == 0 then return 0 end
  local counts = {}
  countErasedReference(counts, args[2])
  flushCounts(keys[2], counts)
  ackEntry(keys[1], args[3], args[1])
  return 1
end)

-- campaign_reference_erase_slot (a cluster): campaign_reference_erase in the message's slot. The
-- message record decides who settles the reference, the purge or a sender: when there is none, a
-- refusal (erased) is recorded as a sender's would be, so a sender that takes the entry meanwhile
-- settles it as its own, uncounted. The caller deletes the entry after. KEYS: the slot's counter
-- outbox, the message. ARGV: entry id, variant, the campaign's stats key, the record's TTL (ms).
-- Returns 1 when counted.
register('campaign_reference_erase_slot', function(keys, args)
  if redis.call('EXISTS', keys[2]) == 1 then return 0 end
  redis.call('HSET', keys[2], 'state', 'skipped', 'refused', 'erased', 'entry', args[1])
  redis.call('PEXPIRE', keys[2], args[4])
  local acc = newCounters()
  countErasedReference(countsOf(acc, args[3]), args[2])
  flushCounters(acc, keys[1])
  return 1
end)

-- campaign_transition: moves a campaign between states, atomically. Which states an action moves from
-- and to, the fields it stamps and whether the new state is active are the Swift rule
-- (CampaignStore.Action.move), passed as data; what needs stored state is checked here: a schedule
-- past the campaign's expiry expires it instead, an activation adopts its audience snapshot (or drops
-- it when it lost the race), and completion waits for the plan to be done and no message to be open.
-- KEYS: 1 the campaign, 2 its stats; on a single Redis 3 the active campaigns, 4 the audience snapshot
-- (''), 5 its audience. On a cluster the caller keeps the active set, and an activation adopts its
-- snapshot by name (a `snapshot` field among the fields: the shards' copies stay where they are).
-- ARGV: 1 check (schedule | activate | complete | ''), 2 now, 3 campaign id, 4 the states it moves
-- from (comma-separated), 5 the state it moves to, 6 '1' when that state is active, 7 the state a
-- schedule past its expiry moves to, 8 '1' when that one is active, then the field/value pairs to set.
-- Returns { 'ok', state } | { 'illegal', state } | { 'notready' } | { 'missing' }.
register('campaign_transition', function(keys, args)
  local st = redis.call('HGET', keys[1], 'state')
  if not st then return { 'missing' } end
  local check, now, id = args[1], args[2], args[3]
  local function move(to, active, fields)
    redis.call('HSET', keys[1], 'state', to, 'updatedAt', now, unpack(fields))
    if keys[3] then
      if active == '1' then redis.call('SADD', keys[3], id) else redis.call('SREM', keys[3], id) end
    end
    return { 'ok', to }
  end
  local allowed = false
  for s in string.gmatch(args[4], '[^,]+') do if s == st then allowed = true end end
  if not allowed then
    if check == 'activate' and keys[4] and keys[4] ~= '' then redis.call('DEL', keys[4]) end
    return { 'illegal', st }
  end
  local fields = { unpack(args, 9) }
  if check == 'schedule' then
    local exp = tonumber(redis.call('HGET', keys[1], 'expiresAt') or '0')
    if exp > 0 and exp <= tonumber(now) then return move(args[7], args[8], { 'endedAt', now }) end
    if not redis.call('HGET', keys[1], 'startAt') then fields[#fields + 1] = 'startAt'; fields[#fields + 1] = now end
  elseif check == 'activate' and keys[4] and keys[4] ~= '' then
    if redis.call('EXISTS', keys[4]) == 1 then redis.call('RENAME', keys[4], keys[5]) else redis.call('DEL', keys[5]) end
  elseif check == 'complete' then
    if redis.call('HGET', keys[1], 'planDone') ~= '1' then return { 'notready' } end
    if tonumber(redis.call('HGET', keys[2], 'open') or '0') > 0 then return { 'notready' } end
  end
  return move(args[5], args[6], fields)
end)

-- campaign_release_parked: a resumed campaign's parked messages back on their queues. KEYS: 1 the
-- parked set, then per message its hash and its stream ('' when the message is gone). ARGV: the
-- message ids, in the same order. Each leaves the set; one still queued or retrying is queued again.
-- Returns how many left the set here.
register('campaign_release_parked', function(keys, args)
  local taken = 0
  for i, id in ipairs(args) do
    local msg, stream = keys[2 * i], keys[2 * i + 1]
    if redis.call('SREM', keys[1], id) == 1 then
      taken = taken + 1
      local st = redis.call('HGET', msg, 'state')
      if stream ~= '' and (st == 'queued' or st == 'retrying') then redis.call('XADD', stream, '*', 'id', id) end
    end
  end
  return taken
end)
