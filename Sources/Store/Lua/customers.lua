-- The customer model's writes from webhooks and the admin API (CustomerStore, TagStore). Keys the
-- caller can name are passed in KEYS; the keys of a customer found here (cust:{id}..., through
-- merge redirects) are named by customer_base's helpers, because the id is only known inside.

-- The follower's 48 h service window (Keys.session) and its last messages, capped.
local function writeSession(sessKey, msgsKey, now, cid, ttl, cap, message, replyMessage)
  redis.call('SET', sessKey, now .. ' ' .. cid, 'EX', ttl)
  local n
  if replyMessage ~= '' then n = redis.call('RPUSH', msgsKey, message, replyMessage)
  else n = redis.call('RPUSH', msgsKey, message) end
  if n > cap then redis.call('LTRIM', msgsKey, -cap, -1) end
  redis.call('EXPIRE', msgsKey, ttl)
end

-- The callback is stored: its dedup key holds the reply; Keys.sessionDedup lists the sender's dedup
-- keys for an erasure ('' for a callback of no follower).
local function markStored(dedupKey, reply, ttl, dedupIndex)
  redis.call('SET', dedupKey, reply, 'EX', ttl)
  if dedupIndex ~= '' then
    redis.call('SADD', dedupIndex, dedupKey)
    redis.call('EXPIRE', dedupIndex, ttl)
  end
end

-- The customer's part of one webhook, after its hash has lastSeenAt and the consent: tags, QR
-- scene attribution (IngestPlan.SceneCount) and the scene's owner, the timeline entry, then the
-- reindex (`whole`: a new customer, a consent change or a merge) or the CRM touch alone. Shared by
-- customer_ingest (one call on a single Redis) and ingest_customer (a step on a cluster).
-- Returns the scene-stat fields to count (Keys.qrSceneStats; none without a count kind).
local function ingestInto(cid, whole, tags, entry, cap, countKind, scene, sourceField, owner)
  addTags(cid, tags)
  local counts = {}
  if countKind == 'unsubscribe' then
    local from = redis.call('HGET', ckey(cid), sourceField)
    if from then
      counts[1] = from .. '\31unsubscribes'
      redis.call('HDEL', ckey(cid), sourceField)
    end
  elseif countKind == 'subscribe' and scene == '' then
    redis.call('HDEL', ckey(cid), sourceField)
  elseif countKind ~= '' then
    counts[1] = scene .. '\31scans'
    if countKind == 'subscribe' then
      counts[2] = scene .. '\31subscribes'
      redis.call('HSET', ckey(cid), sourceField, scene)
    end
  end
  if owner ~= '' then redis.call('HSETNX', ckey(cid), 'owner', owner) end
  pushTimeline(cid, entry, cap)
  -- reindex ends with the CRM touch of a qualified customer; the light path touches it itself.
  if whole then reindex(cid) else crmTouch(cid) end
  return counts
end

-- customer_ingest: one verified webhook, atomically: replay guard, retry dedup, customer upsert (and
-- merge by unionid), consent, tags, QR scene counts, timeline, session and the inbound stream.
-- KEYS: 1 nonce ('' when the signature covers the body: the dedup key alone then answers a replay),
--   2 dedup, 3 identity index ('' for a callback of no follower), 4 QR scene stats (''),
--   5 session (''), 6 session messages (''), 7 the sender's dedup-key index (''), 8 stream:inbound.
-- ARGV: 1 now, 2 nonce TTL, 3 dedup TTL, 4 reply, 5 new id, 6 identity, 7 unionid identity (''),
--   8 consent field (''), 9 consent value, 10 timeline entry, 11 timeline cap, 12 session message,
--   13 session TTL, 14 session cap, 15 stream max length, 16 interaction type, 17 account, 18 payload,
--   19 reply message (''), 20 fingerprint, 21 scene count kind (''), 22 scene, 23 source field,
--   24 owner (''), 25.. tags.
-- Returns { 'ok', id, reply, created } | { 'dup', '', reply } | { 'retry', '', reply } | { 'replay' }.
register('customer_ingest', function(keys, args)
  local nonceKey, dedupKey, idxKey, statsKey = keys[1], keys[2], keys[3], keys[4]
  local sessKey, sessMsgsKey, dedupIndex, stream = keys[5], keys[6], keys[7], keys[8]
  local now, reply, newId, identity, unionid = args[1], args[4], args[5], args[6], args[7]
  local consentField, consentValue, cap = args[8], args[9], tonumber(args[11])

  if nonceKey ~= '' then
    -- SET .. NX GET: the fingerprint stored first, or nil when this nonce is new (now taken).
    local seen = redis.call('SET', nonceKey, args[20], 'NX', 'GET', 'EX', args[2])
    if seen then
      if seen ~= args[20] then return { 'replay' } end
      return { 'retry', '', redis.call('GET', dedupKey) or '' }
    end
  end
  local stored = redis.call('GET', dedupKey)
  if stored then return { 'dup', '', stored } end

  local cid, created = '', 0
  if idxKey ~= '' then
    local live = false
    cid = redis.call('GET', idxKey)
    if cid then cid, live = resolveLive(cid) end
    local fields = {}
    if consentField ~= '' then fields = { consentField, consentValue } end
    if not live then
      cid = newId
      create(cid, now, identity, fields)
      created = 1
    end
    local how = 'none'
    if unionid ~= '' then
      local merged
      cid, merged, how = bind(cid, unionid, now, cap, args[15])
    end
    -- Only a new customer, a consent change or a merge moves the field indexes; any other
    -- interaction touches lastSeenAt (and its index) alone.
    local whole = created == 1 or consentField ~= '' or how == 'merged'
    if created == 0 or cid ~= newId then
      if whole then redis.call('HSET', ckey(cid), 'lastSeenAt', now, unpack(fields))
      else touchLastSeen(cid, now) end
    end
    for _, field in ipairs(ingestInto(cid, whole, { unpack(args, 25) }, args[10], cap, args[21], args[22], args[23], args[24])) do
      redis.call('HINCRBY', statsKey, field, 1)
    end
    if sessKey ~= '' then writeSession(sessKey, sessMsgsKey, now, cid, args[13], tonumber(args[14]), args[12], args[19]) end
  end
  redis.call('XADD', stream, 'MAXLEN', '~', args[15], '*', 'type', args[16], 'account', args[17],
    'customer', cid, 'at', now, 'payload', args[18])
  markStored(dedupKey, reply, args[3], dedupIndex)
  return { 'ok', cid, reply, created }
end)

-- On a cluster a webhook is a chain of single-slot steps (CustomerStore.ingestInSteps): the replay
-- guard and dedup check (plain commands), the identity claim (SET NX GET), ingest_customer in the
-- customer's slot, the stream append, and ingest_finish in the sender's slot. Each step can run
-- again: a platform's retry of a callback cut off between steps finds its nonce with the same
-- fingerprint and no dedup key yet, and runs the chain again; the customer changes once.

-- ingest_customer (sharded, see customer_base): the customer's step.
-- KEYS: 1 the customer's hash (Keys.customer), 2 its applied callbacks (Keys.customerIngested).
-- ARGV: 1 id, 2 the callback's dedup key, 3 the dedup TTL, 4 now, 5 identity (for a customer created
--   here: the caller claimed its index for this id), 6 consent field (''), 7 consent value,
--   8 timeline entry, 9 timeline cap, 10 scene count kind (''), 11 scene, 12 source field, 13 owner (''),
--   14.. tags.
-- Returns { 'ok', created, scene-stat fields to count } | { 'moved', survivor }, then what it emitted.
register('ingest_customer', sharded(function(keys, args)
  local id, op, now = args[1], args[2], args[4]
  local h = redis.call('HMGET', keys[1], 'mergedInto', 'createdAt', 'mergingInto')
  if h[1] or h[3] then return { 'moved', h[1] or h[3] } end
  -- Keys.customerIngested: op -> score 2 * applied-at ms + (1 if it created the customer).
  local done = redis.call('ZSCORE', keys[2], op)
  if done then return { 'ok', tonumber(done) % 2, {} } end
  local fields = {}
  if args[6] ~= '' then fields = { args[6], args[7] } end
  local created = 0
  -- No record yet: this call's identity claim (or one cut off before its step) named this id.
  if not h[2] then
    createRecord(id, now, args[5], fields)
    created = 1
  elseif args[6] ~= '' then redis.call('HSET', keys[1], 'lastSeenAt', now, unpack(fields))
  else touchLastSeen(id, now) end
  local counts = ingestInto(id, created == 1 or args[6] ~= '', { unpack(args, 14) }, args[8], tonumber(args[9]),
    args[10], args[11], args[12], args[13])
  -- Kept for the dedup window: older entries go as new ones come, the key with the last one.
  redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', 2 * (tonumber(now) - 1000 * tonumber(args[3])))
  redis.call('ZADD', keys[2], 2 * tonumber(now) + created, op)
  redis.call('EXPIRE', keys[2], args[3])
  return { 'ok', created, counts }
end))

-- ingest_append: the interaction on the inbound stream, once per callback: a chain run again (a
-- retry after a cut, or a retry delivered while the first is still running) appends nothing more.
-- KEYS: 1 the stream, 2 the callback's mark in the stream's slot (Keys.streamAppended).
-- ARGV: 1 the mark's TTL, 2 the stream's max length, then the entry's field/value pairs.
-- Returns 1 when appended, 0 when it was already.
register('ingest_append', function(keys, args)
  if not redis.call('SET', keys[2], '1', 'NX', 'EX', args[1]) then return 0 end
  redis.call('XADD', keys[1], 'MAXLEN', '~', args[2], '*', unpack(args, 3))
  return 1
end)

-- ingest_finish: the last step, in the sender's slot: the session (when the interaction opens the
-- service window), then the dedup key: from here on the callback is stored.
-- KEYS: 1 dedup key; for a follower 2 the sender's dedup-key index; with a session 3 the session,
--   4 its messages. ARGV: 1 reply, 2 dedup TTL, 3 now, 4 customer id, 5 session TTL, 6 session cap,
--   7 session message, 8 reply message ('').
register('ingest_finish', function(keys, args)
  if keys[3] then writeSession(keys[3], keys[4], args[3], args[4], args[5], tonumber(args[6]), args[7], args[8]) end
  markStored(keys[1], args[1], args[2], keys[2] or '')
  return 1
end)

-- customer_bind_identity: binds an identity from the admin API, merging where another customer holds
-- it. KEYS: 1 stream:inbound. ARGV: id, identity, now, timeline cap, stream max, timeline entry.
-- Returns { 'notfound' } | { how, survivor, merged or '' }.
register('customer_bind_identity', function(keys, args)
  local id, live = resolveLive(args[1])
  if not live then return { 'notfound' } end
  local win, lose, how = bind(id, args[2], args[3], tonumber(args[4]), args[5])
  if how ~= 'exists' then
    pushTimeline(win, args[6], tonumber(args[4]))
    -- An interaction too: binding a phone or email can score (identity.bound, data.type).
    redis.call('XADD', keys[1], 'MAXLEN', '~', args[5], '*', 'type', 'identity.bound', 'customer', win,
      'payload', cjson.encode({ type = string.match(args[2], '^(%w+):') }), 'at', args[3])
  end
  reindex(win)
  return { how, win, lose or '' }
end)

-- customer_upsert_follower: a follower known from WeChat's user API (import or profile fetch):
-- created if the openid is new, its profile stored, its unionid bound (merging where it links two).
-- KEYS: 1 the openid's identity index. ARGV: new id, openid identity, now, consent field, consent
-- value (both for a new customer only), unionid identity or '', timeline cap, stream max length, then
-- profile field/value pairs. Returns { id, created }.
register('customer_upsert_follower', function(keys, args)
  local now, cap = args[3], tonumber(args[7])
  local id, created = nil, 0
  local owner = redis.call('GET', keys[1])
  if owner then
    local live
    id, live = resolveLive(owner)
    if not live then owner = nil end
  end
  if not owner then
    id = args[1]
    create(id, now, args[2], { args[4], args[5] })
    created = 1
  end
  if #args > 8 then redis.call('HSET', ckey(id), unpack(args, 9)) end
  if args[6] ~= '' then id = bind(id, args[6], now, cap, args[8]) end
  reindex(id)
  return { id, created }
end)

-- follower_upsert_customer (sharded): the customer's step of customer_upsert_follower on a cluster
-- (CustomerStore.upsertFollowerInSteps; the caller claimed the openid's index and binds the unionid).
-- KEYS: 1 the customer's hash. ARGV: 1 id, 2 openid identity, 3 now, 4 consent field, 5 consent value
-- (both for a customer created here), then profile field/value pairs.
-- Returns { 'ok', created } | { 'moved', survivor }, then what it emitted.
register('follower_upsert_customer', sharded(function(keys, args)
  local id = args[1]
  local h = redis.call('HMGET', keys[1], 'mergedInto', 'createdAt', 'mergingInto')
  if h[1] or h[3] then return { 'moved', h[1] or h[3] } end
  local created = 0
  if not h[2] then
    createRecord(id, args[3], args[2], { args[4], args[5] })
    created = 1
  end
  if #args > 5 then redis.call('HSET', keys[1], unpack(args, 6)) end
  reindex(id)
  return { 'ok', created }
end))

-- A merge on a cluster (CustomerStore.mergeInSteps): merge_begin in the loser's slot, merge_absorb in
-- the survivor's, the loser's identity index keys pointed at the survivor one by one, merge_retire in
-- the loser's slot. Each can run again; Keys.pendingMerges lists the merges begun and not retired.

-- merge_begin: marks the loser (mergingInto: its writes go to the survivor from now on) and exports it.
-- KEYS: the loser's hash. ARGV: loser, survivor. Returns { 'ok', data as JSON } | { 'done' } (a stub).
register('merge_begin', function(keys, args)
  if redis.call('HEXISTS', keys[1], 'mergedInto') == 1 then return { 'done' } end
  redis.call('HSET', keys[1], 'mergingInto', args[2])
  return { 'ok', cjson.encode(mergeExport(args[1])) }
end)

-- merge_absorb (sharded): KEYS: the survivor's hash. ARGV: survivor, loser, data (merge_begin's),
-- now, timeline cap.
-- Returns { 'ok' } | { 'done' } (absorbed before) | { 'moved', its survivor }, then what it emitted.
register('merge_absorb', sharded(function(keys, args)
  local win, lose = args[1], args[2]
  local h = redis.call('HMGET', keys[1], 'mergedInto', 'mergingInto')
  if h[1] or h[2] then return { 'moved', h[1] or h[2] } end
  if not mergeAbsorb(win, lose, cjson.decode(args[3]), args[4], tonumber(args[5])) then return { 'done' } end
  indexScore(win)
  reindex(win)
  return { 'ok' }
end))

-- merge_retire (sharded): KEYS: the loser's hash. ARGV: loser, survivor, now. Returns { 1 } (retired now) | { 0 }, then what it emitted.
register('merge_retire', sharded(function(keys, args)
  return { mergeRetire(args[1], args[2], args[3]) and 1 or 0 }
end))

-- customer_add_identity (sharded): an identity whose index key the caller claimed for this customer
-- joins it. KEYS: the customer's hash. ARGV: id, identity, timeline cap, timeline entry.
-- Returns { 'ok' } | { 'notfound' } | { 'moved', survivor }, then what it emitted.
register('customer_add_identity', sharded(function(keys, args)
  local id, live, survivor = hereOrMoved(args[1])
  if survivor then return { 'moved', survivor } end
  if not live then return { 'notfound' } end
  if redis.call('SADD', idskey(id), args[2]) == 1 then pushTimeline(id, args[4], tonumber(args[3])) end
  reindex(id)
  return { 'ok' }
end))

-- customer_tag (sharded): adds (ARGV[1] = 'add') or removes ('remove') tag ARGV[2] on customers
-- ARGV[3..] of one shard (the caller registers the tag name). KEYS: the first customer's hash.
-- Returns { changed, ids that are not customers, moved: id, survivor, ... }, then what it emitted.
register('customer_tag', sharded(function(keys, args)
  local op, tag = args[1], args[2]
  local changed, unknown, moved = 0, {}, {}
  for i = 3, #args do
    local id, live, survivor = hereOrMoved(args[i])
    if survivor then
      moved[#moved + 1] = args[i]
      moved[#moved + 1] = survivor
    elseif live then
      local n
      if op == 'add' then n = addTags(id, { tag }) else n = removeTags(id, { tag }) end
      changed = changed + n
      if n == 1 then crmTouch(id, 'tags') end
    else
      unknown[#unknown + 1] = args[i]
    end
  end
  return { changed, unknown, moved }
end))

-- customer_set_consent (sharded): records a channel consent state (ARGV[2] field, ARGV[3] value) on
-- customer ARGV[1] and updates its field indexes. KEYS: the customer's hash.
-- Returns { 1 } | { 0 } (no such customer) | { 'moved', survivor }, then what it emitted.
register('customer_set_consent', sharded(function(keys, args)
  local id, live, survivor = hereOrMoved(args[1])
  if survivor then return { 'moved', survivor } end
  if not live then return { 0 } end
  redis.call('HSET', ckey(id), args[2], args[3])
  reindex(id)
  return { 1 }
end))

-- customer_reindex (sharded): recomputes the index entries of customers ARGV[1..] of one shard.
-- KEYS: the first customer's hash. Returns { how many }, then what it emitted.
-- CRM-silent: the customers are unchanged, so no CRM gets them again (a reindex at start would
-- otherwise resync every qualified lead, and again after each restart that cut it short).
register('customer_reindex', sharded(crmSilently(function(keys, args)
  for i = 1, #args do reindex(args[i]) end
  return { #args }
end)))

-- customer_adopt (sharded): indexes customers ARGV[1..] of one shard from their own keys, as if new
-- to it: all customers by createdAt, their tags, field and attribute indexes (the customer's list
-- of them cleared first, so every entry is written again) and score. For a deployment moved from a
-- single Redis onto a cluster, whose index keys were not sharded (CustomerStore.adoptCarriedOver).
-- KEYS: the first customer's hash. Returns { how many were live }, then what it emitted.
-- CRM-silent, as customer_reindex: the CRM already has these customers as they are.
register('customer_adopt', sharded(crmSilently(function(keys, args)
  local live = 0
  for i = 1, #args do
    local id = args[i]
    local h = redis.call('HMGET', ckey(id), 'createdAt', 'mergedInto')
    if h[1] and not h[2] then
      redis.call('ZADD', ix('customers'), h[1], id)
      for _, t in ipairs(redis.call('SMEMBERS', tagskey(id))) do redis.call('SADD', ix('tag', t), id) end
      live = live + 1
    end
    redis.call('DEL', fidxkey(id))
    reindex(id)
    indexScore(id)
  end
  return { live }
end)))

-- event_customer (a cluster): an API event on its customer, in its slot (EventStore's steps): created
-- with the identity the caller claimed for it when there is no record, the identities the caller
-- claimed joined, the event recorded once by the client's id, last seen, the timeline, the indexes.
-- Sharded. KEYS: the customer's hash, its event ids (Keys.customerEvents).
-- ARGV: id, the client's event id ('' = none), now, at, identity to create with ('' = the customer
-- must exist), timeline entry, timeline cap, then the identities to add.
-- Returns { 'ok', created } | { 'dup' } | { 'unknown' } | { 'moved', survivor }, then what it emitted.
register('event_customer', sharded(function(keys, args)
  local id, eid, now, at = args[1], args[2], args[3], args[4]
  local h = redis.call('HMGET', keys[1], 'mergedInto', 'createdAt', 'mergingInto')
  if h[1] or h[3] then return { 'moved', h[1] or h[3] } end
  if eid ~= '' and redis.call('SISMEMBER', keys[2], eid) == 1 then return { 'dup' } end
  local created = 0
  if not h[2] then
    if args[5] == '' then return { 'unknown' } end
    createRecord(id, now, args[5])
    created = 1
  end
  for i = 8, #args do redis.call('SADD', idskey(id), args[i]) end
  if eid ~= '' then
    redis.call('SADD', keys[2], eid)
    redis.call('EXPIRE', keys[2], 604800)
  end
  local last = tonumber(redis.call('HGET', keys[1], 'lastSeenAt') or '0')
  if tonumber(at) > last then redis.call('HSET', keys[1], 'lastSeenAt', at) end
  pushTimeline(id, args[6], tonumber(args[7]))
  reindex(id)
  return { 'ok', created }
end))

-- events_record: a batch of interactions from outside WeChat (EventStore.record), all or nothing: each
-- finds its customer (by id, else by any identity; a new one otherwise), binds its identities (a
-- verified one may merge, an unverified collision becomes a merge candidate), is recorded once per
-- event id, and goes on the timeline and the inbound stream. ARGV: now, timeline cap, stream max,
-- actor, then per event: id, customer, new id, type, at, timeline entry, data, n, n flagged
-- identities ('v' or 'u' first), n merge-candidate ids. Returns per event { 'new'|'ok'|'dup', id } or { 'unknown' }.
register('events_record', function(keys, args)
  local now, cap, streamMax, actor = args[1], tonumber(args[2]), args[3], args[4]
  local out = {}
  local i = 5
  while i <= #args do
    local eid, cust, newId, etype, at, entry, data = args[i], args[i + 1], args[i + 2], args[i + 3], args[i + 4], args[i + 5], args[i + 6]
    local n = tonumber(args[i + 7])
    local idents, mayMerge, candidateIds = {}, {}, {}
    for k = 1, n do
      local flagged = args[i + 7 + k]
      idents[k] = string.sub(flagged, 2)
      mayMerge[idents[k]] = string.sub(flagged, 1, 1) == 'v'
      candidateIds[k] = args[i + 7 + n + k]
    end
    i = i + 8 + 2 * n
    local seen = eid ~= '' and redis.call('GET', 'evt:' .. eid)
    if seen then
      out[#out + 1] = { 'dup', seen }
    else
      local id, created = nil, false
      if cust ~= '' then
        local live
        id, live = resolveLive(cust)
        if not live then id = nil end
      else
        for _, ident in ipairs(idents) do
          local owner = redis.call('GET', 'idx:' .. ident)
          if owner then
            local o, live = resolveLive(owner)
            if live then id = o; break end
          end
        end
        if not id then
          id = newId
          create(id, now, idents[1])
          created = true
        end
      end
      if not id then
        out[#out + 1] = { 'unknown' }
      else
        for k, ident in ipairs(idents) do
          local owner = redis.call('GET', 'idx:' .. ident)
          local live = false
          if owner then owner, live = resolveLive(owner) end
          if live and owner ~= id and not mayMerge[ident] then
            mergeCandidate(id, owner, ident, etype, actor, candidateIds[k], now)
          else
            id = bind(id, ident, now, cap, streamMax)
          end
        end
        if eid ~= '' then
          redis.call('SET', 'evt:' .. eid, id, 'EX', 604800)
          -- Keys.customerEvents: what an erasure finds the event ids by (kept as long).
          redis.call('SADD', 'cust:{' .. id .. '}:evts', eid)
          redis.call('EXPIRE', 'cust:{' .. id .. '}:evts', 604800)
        end
        local last = tonumber(redis.call('HGET', ckey(id), 'lastSeenAt') or '0')
        if tonumber(at) > last then redis.call('HSET', ckey(id), 'lastSeenAt', at) end
        pushTimeline(id, entry, cap)
        redis.call('XADD', 'stream:inbound', 'MAXLEN', '~', streamMax, '*', 'type', etype, 'customer', id, 'payload', data, 'at', at, 'source', 'api')
        reindex(id)
        out[#out + 1] = { created and 'new' or 'ok', id }
      end
    end
  end
  return out
end)
