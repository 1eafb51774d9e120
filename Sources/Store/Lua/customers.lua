-- The customer model's writes from webhooks and the admin API (CustomerStore, TagStore). Keys the
-- caller can name are passed in KEYS; the keys of a customer found here (cust:{id}..., through
-- merge redirects) are named by customer_base's helpers, because the id is only known inside.

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
    addTags(cid, { unpack(args, 25) })
    -- QR source attribution (IngestPlan.SceneCount) and the scene's owner.
    local countKind, scene, sourceField, owner = args[21], args[22], args[23], args[24]
    if statsKey ~= '' and countKind ~= '' then
      if countKind == 'unsubscribe' then
        local from = redis.call('HGET', ckey(cid), sourceField)
        if from then
          redis.call('HINCRBY', statsKey, from .. '\31unsubscribes', 1)
          redis.call('HDEL', ckey(cid), sourceField)
        end
      elseif countKind == 'subscribe' and scene == '' then
        redis.call('HDEL', ckey(cid), sourceField)
      else
        redis.call('HINCRBY', statsKey, scene .. '\31scans', 1)
        if countKind == 'subscribe' then
          redis.call('HINCRBY', statsKey, scene .. '\31subscribes', 1)
          redis.call('HSET', ckey(cid), sourceField, scene)
        end
      end
    end
    if owner ~= '' then redis.call('HSETNX', ckey(cid), 'owner', owner) end
    pushTimeline(cid, args[10], cap)
    -- reindex ends with the CRM touch of a qualified customer; the light path touches it itself.
    if whole then reindex(cid) else crmTouch(cid) end
    if sessKey ~= '' then
      local sessTTL, sessCap = args[13], tonumber(args[14])
      redis.call('SET', sessKey, now .. ' ' .. cid, 'EX', sessTTL)
      local n
      if args[19] ~= '' then n = redis.call('RPUSH', sessMsgsKey, args[12], args[19])
      else n = redis.call('RPUSH', sessMsgsKey, args[12]) end
      if n > sessCap then redis.call('LTRIM', sessMsgsKey, -sessCap, -1) end
      redis.call('EXPIRE', sessMsgsKey, sessTTL)
    end
  end
  redis.call('XADD', stream, 'MAXLEN', '~', args[15], '*', 'type', args[16], 'account', args[17],
    'customer', cid, 'at', now, 'payload', args[18])
  redis.call('SET', dedupKey, reply, 'EX', args[3])
  -- Keys.sessionDedup: the dedup keys of this sender's callbacks, for an erasure.
  if dedupIndex ~= '' then
    redis.call('SADD', dedupIndex, dedupKey)
    redis.call('EXPIRE', dedupIndex, args[3])
  end
  return { 'ok', cid, reply, created }
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

-- customer_tag: adds (ARGV[1] = 'add') or removes ('remove') tag ARGV[2] on customers ARGV[3..].
-- KEYS: 1 the set of tag names (Keys.tags). Returns the number changed and the ids that are not
-- customers.
register('customer_tag', function(keys, args)
  local op, tag = args[1], args[2]
  local changed, unknown = 0, {}
  if op == 'add' then redis.call('SADD', keys[1], tag) end
  for i = 3, #args do
    local id, live = resolveLive(args[i])
    if live then
      local n
      if op == 'add' then n = addTags(id, { tag }) else n = removeTags(id, { tag }) end
      changed = changed + n
      if n == 1 then crmTouch(id, 'tags') end
    else
      unknown[#unknown + 1] = args[i]
    end
  end
  return { changed, unknown }
end)

-- customer_set_consent: records a channel consent state (ARGV[2] field, ARGV[3] value) on customer
-- ARGV[1] and updates its field indexes. KEYS: the customer's hash (Keys.customer of ARGV[1]; merge
-- redirects are followed from it). Returns 1, or 0 when the customer does not exist.
register('customer_set_consent', function(keys, args)
  local id, live = resolveLive(args[1])
  if not live then return 0 end
  redis.call('HSET', ckey(id), args[2], args[3])
  reindex(id)
  return 1
end)

-- customer_reindex: recomputes the field indexes of customers ARGV[1..] (after an upgrade, or a
-- change made outside these functions). Returns how many.
register('customer_reindex', function(keys, args)
  for i = 1, #args do reindex(args[i]) end
  return #args
end)

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
