
-- The CRM outbox and inbound changes (CRMOutbox, CRMInboundStore). Per adapter its keys are
-- crm:{a}:dirty, :inflight, :retry, :status and :c:<customer> (Keys.crm*), passed in (crm_take gets
-- the per-customer state keys' prefix, since it picks the customers). The customer records these
-- functions read or change, following merges, are the customer model's (customer_base.lua).

local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- crmInbound: one change a CRM reported to a live customer: stage (a journey signal when it changes),
-- owner, tags added and removed, a timeline entry, the indexes.
local function crmInbound(id, a, now, cap, stage, owner, adds, removes)
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
end

-- crm_inbound_apply (a single Redis): changes a CRM reported (CRMInboundStore.apply), silently (not
-- synced back). KEYS: per change the CRM record's identity index (Keys.identity of
-- crm:<adapter>:<record>; '' for a change by customer id).
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
      crmInbound(id, a, now, cap, stage, owner, adds, removes)
      out[#out + 1] = id
    else
      out[#out + 1] = ''
    end
  end
  return out
end))

-- crm_inbound_customer (sharded, a cluster): one such change to one customer, silently. KEYS: the
-- customer's hash. ARGV: customer, adapter, now, timeline cap, stage, owner, n tags to add and the
-- tags, the tags to remove. Returns { 'ok' } | { 'gone' } | { 'moved', survivor }, then what it emitted.
register('crm_inbound_customer', sharded(crmSilently(function(keys, args)
  local id, live, survivor = hereOrMoved(args[1])
  if survivor then return { 'moved', survivor } end
  if not live then return { 'gone' } end
  local na = tonumber(args[7])
  crmInbound(id, args[2], tonumber(args[3]), tonumber(args[4]), args[5], args[6], { unpack(args, 8, 7 + na) }, { unpack(args, 8 + na) })
  return { 'ok' }
end)))

-- crm_feed: customers touched on stream:crm become due on the adapter's dirty set (after the
-- coalescing delay), and their entries are acknowledged. KEYS: the dirty set, stream:crm.
-- ARGV: the adapter's consumer group, delay ms, then entry id and customer id pairs ('' = nothing to sync).
register('crm_feed', function(keys, args)
  local now = nowMs()
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
  local now = nowMs()
  for i = 1, #args do
    redis.call('ZREM', keys[2], args[i])
    redis.call('ZADD', keys[1], 'NX', now, args[i])
  end
  return 1
end)

-- A batch is taken in two phases: crmLease in the adapter's slot, crmSnapshot in each customer's.
-- crm_take runs both in one call on a single Redis; on a cluster the gateway runs crm_lease, then
-- crm_snapshot per customer, then crm_release for those merged away or gone (CRMOutbox.take).

-- crmLease: moves due retries and expired leases back to the dirty set, then leases up to `size`
-- due customers (a customer whose earlier batch is still on the wire waits for it: ordering).
-- `pick(c)` decides each: 'lease' (leased, counted), 'skip' (taken off the dirty set), or a survivor
-- id to queue instead (merged). Returns the leased { id, seq } pairs, or nil and the wait in ms.
local function crmLease(dirty, inflight, retry, statePrefix, size, lease, token, now, pick)
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
  if #first == 0 then return nil, 200 end
  if redis.call('ZCARD', dirty) < size and tonumber(first[2]) > now then
    return nil, math.min(tonumber(first[2]) - now, 200)
  end
  local out = {}
  local n, offset = 0, 0
  while n < size do
    local page = redis.call('ZRANGE', dirty, offset, offset + size * 2 - 1)
    if #page == 0 then break end
    offset = offset + #page
    for _, c in ipairs(page) do
      if n >= size then break end
      if not redis.call('ZSCORE', inflight, c) then
        redis.call('ZREM', dirty, c)
        offset = offset - 1
        local decision = pick(c)
        if decision == 'lease' then
          local state = statePrefix .. c
          local seq = redis.call('HINCRBY', state, 'seq', 1)
          redis.call('HSET', state, 'lease', token)
          redis.call('ZADD', inflight, now + lease, c)
          out[#out + 1] = { c, seq }
          n = n + 1
        elseif decision ~= 'skip' then
          redis.call('ZADD', dirty, 'NX', now, decision)  -- merged: the survivor is synced instead
        end
      end
    end
  end
  if n == 0 then return nil, 100 end
  return out
end

-- crmSnapshot: what the CRM gets of a live customer: identities, tags, every hash field (the score
-- decayed to now with its shard's half-life) and the `recent` newest timeline entries, as JSON.
local function crmSnapshot(id, now, recent, halfLife)
  local h = redis.call('HGETALL', ckey(id))
  local fields = {}
  for k = 1, #h, 2 do fields[h[k]] = h[k + 1] end
  if fields.score then
    fields.score = string.format('%.4f', decayedScore(tonumber(fields.score), tonumber(fields.scoreAt or now), now, halfLife))
  end
  local items = {}
  if recent > 0 then
    for _, e in ipairs(redis.call('LRANGE', tlkey(id), 0, recent - 1)) do
      local ok, d = pcall(cjson.decode, e)
      if ok then items[#items + 1] = d end
    end
  end
  return cjson.encode({ id = id, identities = redis.call('SMEMBERS', idskey(id)), tags = redis.call('SMEMBERS', tagskey(id)),
    fields = fields, recent = items })
end

-- crm_take (a single Redis): leases a batch and snapshots each customer, in one call.
-- KEYS: the dirty set, the in-flight leases, the retry schedule, the scores index meta (Keys.scoresMeta).
-- ARGV: batch size, lease ms, recent, lease token, the per-customer state keys' prefix
-- (Keys.crmCustomer with an empty customer).
-- Returns { 'batch', id, seq, snapshot, ... } | { 'wait', ms }.
register('crm_take', function(keys, args)
  local size, lease, recent, token, statePrefix = tonumber(args[1]), tonumber(args[2]), tonumber(args[3]), args[4], args[5]
  local now = nowMs()
  local leased, wait = crmLease(keys[1], keys[2], keys[3], statePrefix, size, lease, token, now, function(c)
    local id, live = resolveLive(c)
    if not live then return 'skip' end
    if id ~= c then return id end
    return 'lease'
  end)
  if not leased then return { 'wait', wait } end
  local halfLife = scoreHalfLives(keys[4])
  local out = { 'batch' }
  for _, l in ipairs(leased) do
    out[#out + 1] = l[1]
    out[#out + 1] = l[2]
    out[#out + 1] = crmSnapshot(l[1], now, recent, halfLife)
  end
  return out
end)

-- crm_lease (a cluster, in the adapter's slot): leases a batch without reading the customers.
-- KEYS: the dirty set, the in-flight leases, the retry schedule. ARGV: as crm_take's.
-- Returns { 'batch', now, id, seq, ... } | { 'wait', ms }.
register('crm_lease', function(keys, args)
  local now = nowMs()
  local leased, wait = crmLease(keys[1], keys[2], keys[3], args[5], tonumber(args[1]), tonumber(args[2]), args[4], now,
    function() return 'lease' end)
  if not leased then return { 'wait', wait } end
  local out = { 'batch', now }
  for _, l in ipairs(leased) do out[#out + 1] = l[1]; out[#out + 1] = l[2] end
  return out
end)

-- crm_snapshot (sharded, a cluster, in the customer's slot): KEYS: the customer's hash. ARGV: the
-- customer, now, recent. Returns { 'ok', snapshot } | { 'moved', survivor } | { 'gone' }, then what
-- it emitted (nothing).
register('crm_snapshot', sharded(function(keys, args)
  local id, live, survivor = hereOrMoved(args[1])
  if survivor then return { 'moved', survivor } end
  if not live then return { 'gone' } end
  return { 'ok', crmSnapshot(id, tonumber(args[2]), tonumber(args[3]), scoreHalfLives()) }
end))

-- crm_release (a cluster, in the adapter's slot): leased customers not to sync after all (merged away
-- or gone): their leases dropped, and each survivor queued instead. A gone customer (erased; a
-- touch queued just before its erasure) has its CRM state deleted, so that no key names it.
-- KEYS: the dirty set, the in-flight leases, then each customer's CRM state. ARGV: the token, now,
-- then customer and survivor ('' = gone) pairs, one per state key.
register('crm_release', function(keys, args)
  for i = 3, #args, 2 do
    local state = keys[2 + (i - 1) / 2]
    if redis.call('HGET', state, 'lease') == args[1] then
      redis.call('ZREM', keys[2], args[i])
      if args[i + 1] ~= '' then
        redis.call('HDEL', state, 'lease')
        redis.call('ZADD', keys[1], 'NX', args[2], args[i + 1])
      else
        redis.call('DEL', state)
      end
    end
  end
  return 1
end)

-- crmSettle: one answer of a batch, if the batch still holds the customer's lease (a batch whose lease
-- expired was taken again): the customer's CRM state and its place in the adapter's queue. An ok
-- records the synced sequence and the record id; a hold queues it again; a failure is retried with
-- the backoff (y: the shared RetryPolicy's delays, "d1,d2,...", computed in Swift per try) until the
-- attempts run out or the CRM refuses it for good (dead). Returns the outcome ('ok', 'hold', 'retry',
-- 'dead') and for dead the dead letter's reason, or nil when the lease was lost.
local function crmSettle(state, inflight, retry, dirty, c, seq, kind, x, y, token, maxAttempts, now)
  if redis.call('HGET', state, 'lease') ~= token then return nil end
  redis.call('HDEL', state, 'lease')
  redis.call('ZREM', inflight, c)
  if kind == 'ok' then
    if seq > tonumber(redis.call('HGET', state, 'syncedSeq') or '0') then redis.call('HSET', state, 'syncedSeq', seq) end
    redis.call('HSET', state, 'syncedAt', now, 'attempts', 0)
    redis.call('HDEL', state, 'lastError', 'lastErrorAt')
    if x ~= '' then redis.call('HSET', state, 'recordId', x) end
    return 'ok'
  elseif kind == 'hold' then
    redis.call('HSET', state, 'lastError', x, 'lastErrorAt', now)
    redis.call('ZADD', dirty, 'NX', now, c)
    return 'hold'
  end
  local attempts = redis.call('HINCRBY', state, 'attempts', 1)
  redis.call('HSET', state, 'lastError', x .. (y ~= '' and kind == 'dead' and (': ' .. y) or ''), 'lastErrorAt', now)
  -- The retry (or a dead letter's replay) sends the latest state, so a change queued meanwhile waits for it.
  redis.call('ZREM', dirty, c)
  if kind == 'dead' or attempts >= maxAttempts then
    redis.call('HSET', state, 'attempts', 0)
    return 'dead', kind == 'dead' and x or ('retries_exhausted:' .. x)
  end
  local delays = {}
  for d in string.gmatch(y, '%d+') do delays[#delays + 1] = tonumber(d) end
  local backoff = delays[math.min(attempts, #delays)] or 0
  redis.call('ZADD', retry, tonumber(now) + backoff, c)
  return 'retry'
end

local function crmCounts(status, synced, failed, now)
  if synced > 0 then redis.call('HINCRBY', status, 'synced', synced); redis.call('HSET', status, 'lastSuccessAt', now) end
  if failed > 0 then redis.call('HINCRBY', status, 'deadLettered', failed) end
end

-- crm_finish (a single Redis): records a batch's answers (crmSettle). A synced record id becomes the
-- customer's `crm:<adapter>:<id>` identity, without a resync (crmSilent); a customer merged away
-- meanwhile has its survivor synced instead (which binds its own record).
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
    local outcome, reason = crmSettle(state, inflight, retry, dirty, c, seq, kind, x, y, token, maxAttempts, now)
    if outcome == 'ok' then
      synced = synced + 1
      if x ~= '' then
        local h = redis.call('HMGET', customer, 'createdAt', 'mergedInto')
        if h[2] then
          redis.call('ZADD', dirty, 'NX', now, h[2])
        elseif h[1] and recordIndex ~= '' and not redis.call('GET', recordIndex) then
          redis.call('SET', recordIndex, c)
          redis.call('SADD', identities, y)
        end
      end
    elseif outcome == 'dead' then
      failed = failed + 1
      redis.call('XADD', dlq, 'MAXLEN', '~', '100000', '*', 'adapter', a, 'customer', c, 'reason', reason, 'message', y, 'at', now)
    end
  end
  crmCounts(status, synced, failed, now)
  return synced
end))

-- crm_settle (a cluster, in the adapter's slot): crm_finish's queue half. KEYS: the in-flight leases,
-- the retry schedule, the dirty set, the adapter's status, then each answer's CRM state. ARGV: as
-- crm_finish's. What reaches other slots is returned for the caller (CRMOutbox.finish): { synced,
-- { customer, record identity } per synced record, { customer, reason, message } per dead letter }.
register('crm_settle', function(keys, args)
  local token, maxAttempts, now = args[2], tonumber(args[3]), args[4]
  local synced, binds, dead = 0, {}, {}
  for i = 5, #args, 5 do
    local c, seq, kind, x, y = args[i], tonumber(args[i + 1]), args[i + 2], args[i + 3], args[i + 4]
    local outcome, reason = crmSettle(keys[4 + i / 5], keys[1], keys[2], keys[3], c, seq, kind, x, y, token, maxAttempts, now)
    if outcome == 'ok' then
      synced = synced + 1
      if x ~= '' and y ~= '' then binds[#binds + 1] = c; binds[#binds + 1] = y end
    elseif outcome == 'dead' then
      dead[#dead + 1] = c; dead[#dead + 1] = reason; dead[#dead + 1] = y
    end
  end
  crmCounts(keys[4], synced, #dead / 3, now)
  return { synced, binds, dead }
end)
