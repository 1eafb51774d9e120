
-- The CRM outbox and inbound changes (CRMOutbox, CRMInboundStore). Per adapter its keys are
-- crm:{a}:dirty, :inflight, :retry, :status and :c:<customer> (Keys.crm*), passed in (crm_take gets
-- the per-customer state keys' prefix, since it picks the customers). The customer records these
-- functions read or change, following merges, are the customer model's (customer_base.lua).

-- crm_inbound_apply: changes a CRM reported (CRMInboundStore.apply), silently (not synced back).
-- KEYS: per change the CRM record's identity index (Keys.identity of crm:<adapter>:<record>; '' for a
-- change by customer id).
-- ARGV: adapter, now, timeline cap, then per change: kind (record | customer), the CRM record id or
-- our customer id, stage (''), owner (''), n tags to add and the tags, m tags to remove and the tags.
-- Returns per change the customer id changed, or '' when none was found.
register('crm_inbound_apply', crmSilently(function(keys, args)
  local a, now, cap = args[1], tonumber(args[2]), tonumber(args[3])
  local n = 0
  local out = {}
  local i = 4
  while i <= #args do
    local kind, ref, stage, owner = args[i], args[i + 1], args[i + 2], args[i + 3]
    local na = tonumber(args[i + 4])
    local adds = { unpack(args, i + 5, i + 4 + na) }
    i = i + 5 + na
    local nr = tonumber(args[i])
    local removes = { unpack(args, i + 1, i + nr) }
    i = i + 1 + nr
    n = n + 1
    local id = ref
    if kind == 'record' then id = redis.call('GET', keys[n]) end
    local live = false
    if id then id, live = resolveLive(id) end
    if live then
      local data = { adapter = a }
      if stage ~= '' then
        if redis.call('HGET', ckey(id), 'stage') ~= stage then journeySignal(id, 'stage', stage) end
        redis.call('HSET', ckey(id), 'stage', stage); data.stage = stage
      end
      if owner ~= '' then redis.call('HSET', ckey(id), 'owner', owner); data.owner = owner end
      addTags(id, adds)
      removeTags(id, removes)
      if #adds > 0 then data.addTags = adds end
      if #removes > 0 then data.removeTags = removes end
      pushTimeline(id, cjson.encode({ at = now, type = 'crm.update', data = data }), cap)
      reindex(id)
      out[#out + 1] = id
    else
      out[#out + 1] = ''
    end
  end
  return out
end))

-- crm_feed: customers touched on stream:crm become due on the adapter's dirty set (after the
-- coalescing delay), and their entries are acknowledged. KEYS: the dirty set, stream:crm.
-- ARGV: the adapter's consumer group, delay ms, then entry id and customer id pairs ('' = nothing to sync).
register('crm_feed', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local due = now + tonumber(args[2])
  local acks = {}
  for i = 3, #args, 2 do
    if args[i + 1] ~= '' then redis.call('ZADD', keys[1], 'NX', due, args[i + 1]) end
    acks[#acks + 1] = args[i]
  end
  if #acks > 0 then redis.call('XACK', keys[2], args[1], unpack(acks)) end
  return 1
end)

-- crm_enqueue: customers to sync now (a resync), out of the retry schedule. KEYS: the dirty set, the
-- retry schedule. ARGV: customer ids.
register('crm_enqueue', function(keys, args)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = 1, #args do
    redis.call('ZREM', keys[2], args[i])
    redis.call('ZADD', keys[1], 'NX', now, args[i])
  end
  return 1
end)

-- crm_take: Moves due retries and expired leases back, then leases the batch and snapshots each customer:
-- identities, tags, every hash field and the `recent` newest timeline entries.
-- KEYS: the dirty set, the in-flight leases, the retry schedule, the scores index meta (Keys.scoresMeta).
-- ARGV: batch size, lease ms, recent, lease token, the per-customer state keys' prefix
-- (Keys.crmCustomer with an empty customer).
register('crm_take', function(keys, args)
  local size, lease, recent, token, statePrefix = tonumber(args[1]), tonumber(args[2]), tonumber(args[3]), args[4], args[5]
  local dirty, inflight, retry = keys[1], keys[2], keys[3]
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for _, c in ipairs(redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', retry, c)
    redis.call('ZADD', dirty, 'NX', now, c)
  end
  for _, c in ipairs(redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', inflight, c)
    redis.call('HDEL', statePrefix .. c, 'lease')
    redis.call('ZADD', dirty, 'NX', now, c)
  end
  local first = redis.call('ZRANGE', dirty, 0, 0, 'WITHSCORES')
  if #first == 0 then return { 'wait', 200 } end
  local halfLife = scoreHalfLives(keys[4])
  if redis.call('ZCARD', dirty) < size and tonumber(first[2]) > now then
    return { 'wait', math.min(tonumber(first[2]) - now, 200) }
  end
  local out = { 'batch' }
  local n, offset = 0, 0
  while n < size do
    local page = redis.call('ZRANGE', dirty, offset, offset + size * 2 - 1)
    if #page == 0 then break end
    offset = offset + #page
    for _, c in ipairs(page) do
      if n >= size then break end
      -- A customer whose earlier batch is still on the wire waits for it (ordering).
      if not redis.call('ZSCORE', inflight, c) then
        redis.call('ZREM', dirty, c)
        offset = offset - 1
        local id, live = resolveLive(c)
        if id ~= c and live then
          redis.call('ZADD', dirty, 'NX', now, id)  -- merged: the survivor is synced instead
        elseif live then
          local state = statePrefix .. id
          local seq = redis.call('HINCRBY', state, 'seq', 1)
          redis.call('HSET', state, 'lease', token)
          redis.call('ZADD', inflight, now + lease, id)
          local h = redis.call('HGETALL', ckey(id))
          local fields = {}
          for k = 1, #h, 2 do fields[h[k]] = h[k + 1] end
          if fields.score then
            -- The score as it is now, decayed since it last changed.
            fields.score = string.format('%.4f', decayedScore(tonumber(fields.score), tonumber(fields.scoreAt or now), now, halfLife))
          end
          local items = {}
          if recent > 0 then
            for _, e in ipairs(redis.call('LRANGE', tlkey(id), 0, recent - 1)) do
              local ok, d = pcall(cjson.decode, e)
              if ok then items[#items + 1] = d end
            end
          end
          local doc = { id = id, identities = redis.call('SMEMBERS', idskey(id)), tags = redis.call('SMEMBERS', tagskey(id)),
            fields = fields, recent = items }
          out[#out + 1] = id
          out[#out + 1] = seq
          out[#out + 1] = cjson.encode(doc)
          n = n + 1
        end
      end
    end
  end
  if n == 0 then return { 'wait', 100 } end
  return out
end)

-- crm_finish: Only the lease holder's answer counts (a batch whose lease expired was taken again). A synced
-- record id becomes the customer's `crm:<adapter>:<id>` identity, without a resync (crmSilent); a
-- customer merged away meanwhile has its survivor synced instead (which binds its own record).
-- KEYS: the in-flight leases, the retry schedule, the dirty set, the adapter's status, the CRM dead
-- letters (Keys.crmDeadLetters), then 4 per answer: the customer's CRM state (Keys.crmCustomer), its
-- record (Keys.customer), its identities (Keys.customerIdentities), the synced record's identity
-- index (Keys.identity; '' = none).
-- ARGV: adapter, token, max attempts, now, then 5 per answer: customer, seq, kind (ok | hold | retry |
-- dead), record id or reason, then ok: the record's identity (crm:<adapter>:<record>; '' = none) |
-- retry: the backoff delays ("d1,d2,...") | dead: the CRM's message.
register('crm_finish', crmSilently(function(keys, args)
  local a, token, maxAttempts, now = args[1], args[2], tonumber(args[3]), args[4]
  local inflight, retry, dirty, status, dlq = keys[1], keys[2], keys[3], keys[4], keys[5]
  local synced, failed = 0, 0
  local k = 6
  for i = 5, #args, 5 do
    local c, seq, kind, x, y = args[i], tonumber(args[i + 1]), args[i + 2], args[i + 3], args[i + 4]
    local state, customer, identities, recordIndex = keys[k], keys[k + 1], keys[k + 2], keys[k + 3]
    k = k + 4
    if redis.call('HGET', state, 'lease') == token then
      redis.call('HDEL', state, 'lease')
      redis.call('ZREM', inflight, c)
      if kind == 'ok' then
        synced = synced + 1
        if seq > tonumber(redis.call('HGET', state, 'syncedSeq') or '0') then redis.call('HSET', state, 'syncedSeq', seq) end
        redis.call('HSET', state, 'syncedAt', now, 'attempts', 0)
        redis.call('HDEL', state, 'lastError', 'lastErrorAt')
        if x ~= '' then
          redis.call('HSET', state, 'recordId', x)
          local h = redis.call('HMGET', customer, 'createdAt', 'mergedInto')
          if h[2] then
            redis.call('ZADD', dirty, 'NX', now, h[2])
          elseif h[1] and recordIndex ~= '' and not redis.call('GET', recordIndex) then
            redis.call('SET', recordIndex, c)
            redis.call('SADD', identities, y)
          end
        end
      elseif kind == 'hold' then
        redis.call('HSET', state, 'lastError', x, 'lastErrorAt', now)
        redis.call('ZADD', dirty, 'NX', now, c)
      else
        local attempts = redis.call('HINCRBY', state, 'attempts', 1)
        redis.call('HSET', state, 'lastError', x .. (y ~= '' and kind == 'dead' and (': ' .. y) or ''), 'lastErrorAt', now)
        if kind == 'dead' or attempts >= maxAttempts then
          failed = failed + 1
          redis.call('HSET', state, 'attempts', 0)
          redis.call('ZREM', dirty, c)
          redis.call('XADD', dlq, 'MAXLEN', '~', '100000', '*', 'adapter', a, 'customer', c,
            'reason', kind == 'dead' and x or ('retries_exhausted:' .. x), 'message', y, 'at', now)
        else
          -- The retry sends the latest state, so a change queued meanwhile waits for it.
          redis.call('ZREM', dirty, c)
          -- The wait is the shared RetryPolicy's, computed in Swift per try (y: "d1,d2,...").
          local delays = {}
          for d in string.gmatch(y, '%d+') do delays[#delays + 1] = tonumber(d) end
          local backoff = delays[math.min(attempts, #delays)] or 0
          redis.call('ZADD', retry, tonumber(now) + backoff, c)
        end
      end
    end
  end
  if synced > 0 then redis.call('HINCRBY', status, 'synced', synced); redis.call('HSET', status, 'lastSuccessAt', now) end
  if failed > 0 then redis.call('HINCRBY', status, 'deadLettered', failed) end
  return synced
end))
