local function ckey(id) return 'cust:{' .. id .. '}' end
local function tagskey(id) return 'cust:{' .. id .. '}:tags' end
local function idskey(id) return 'cust:{' .. id .. '}:ids' end
local function tlkey(id) return 'cust:{' .. id .. '}:timeline' end
local function fidxkey(id) return 'cust:{' .. id .. '}:fidx' end
local function campskey(id) return 'cust:{' .. id .. '}:camps' end

-- The index shard of the call's customer (IndexShard.argument): '' on a single Redis, where the
-- indexes keep their unsharded names; '{<tag>}' on a cluster, where a customer's index entries live
-- in the slot of its own keys. Set by `sharded` for one call; `ix` names an index key in it.
local shard = ''
-- The attribute schema a sharded call was given (flat name, kind pairs), instead of reading the
-- singleton schema key from another slot; nil: read Keys.attributeSchema.
local shardSchema = nil
-- What a sharded call caused in other slots (stream:crm, stream:journeys): returned to the caller,
-- who appends it (rule 5 of the key model); nil: append here, as on a single Redis.
local emitted = nil
-- An index key: <base>:<name> or <base>:{<tag>}:<name> (IndexShard.key).
local function ix(base, name)
  local k = base
  if shard ~= '' then k = k .. ':' .. shard end
  if name then k = k .. ':' .. name end
  return k
end

-- A function of customers of one shard: ARGV[1] is the shard, ARGV[2] the attribute schema
-- ('n1,k1,n2,k2', '' for none, '*' to read Keys.attributeSchema as on a single Redis); the function
-- sees the rest. In a shard of a cluster what it causes in other slots is emitted, not appended;
-- the reply's last element lists it (empty on a single Redis). The library's state outlives a call,
-- so it is cleared again after.
local function sharded(fn)
  return function(keys, args)
    shard = args[1]
    if shard ~= '' then emitted = {} end
    if args[2] ~= '*' then
      shardSchema = {}
      for part in string.gmatch(args[2], '[^,]+') do shardSchema[#shardSchema + 1] = part end
    end
    local ok, r = pcall(fn, keys, { unpack(args, 3) })
    local out = emitted or {}
    shard, shardSchema, emitted = '', nil, nil
    if not ok then error(r) end
    r[#r + 1] = out
    return r
  end
end

-- Follows mergedInto redirects: the surviving id, and whether that customer exists (one read per hop).
local function resolveLive(id)
  for _ = 1, 16 do
    local r = redis.call('HMGET', ckey(id), 'mergedInto', 'createdAt')
    if not r[1] then return id, r[2] ~= false end
    id = r[1]
  end
  return id, false
end

-- A customer as a sharded function finds it: on a single Redis merge redirects are followed here
-- (resolveLive); in a cluster's shard a redirect leads to another slot, so it is answered instead.
-- Returns the id, whether it is live, and the survivor to call again (cluster only).
local function hereOrMoved(id)
  if shard == '' then
    local live
    id, live = resolveLive(id)
    return id, live, nil
  end
  local h = redis.call('HMGET', ckey(id), 'mergedInto', 'createdAt', 'mergingInto')
  if h[1] or h[3] then return id, false, h[1] or h[3] end
  return id, h[2] ~= false, nil
end

-- Set while a function applies a change coming from the CRM, so it is not synced back (no echo).
local crmSilent = false

-- A function that runs with crmSilent set. The library's state outlives a call (Redis Functions),
-- so the flag is cleared again even when the function fails.
local function crmSilently(fn)
  return function(keys, args)
    crmSilent = true
    local ok, r = pcall(fn, keys, args)
    crmSilent = false
    if not ok then error(r) end
    return r
  end
end

-- A qualified customer (qualifiedAt set) changed: each CRM adapter syncs it again (coalesced).
local function crmTouch(id, reason)
  if crmSilent then return end
  if redis.call('HEXISTS', ckey(id), 'qualifiedAt') == 1 then
    if emitted then
      emitted[#emitted + 1] = 'crm\31' .. id .. '\31' .. (reason or 'changed')
      return
    end
    redis.call('XADD', 'stream:crm', 'MAXLEN', '~', '1000000', '*', 'customer', id, 'reason', reason or 'changed')
  end
end

-- A tag added or a stage reached that an active journey enrols on (Keys.journeyWatch, kept by the
-- journeys API): a signal on stream:journeys for the journey runner. Nothing when no journey watches.
local function journeySignal(id, kind, value)
  -- Sharded: the caller checks the journeys' watch list and signals.
  if emitted then
    emitted[#emitted + 1] = 'journey\31' .. id .. '\31' .. kind .. '\31' .. value
    return
  end
  if redis.call('SISMEMBER', 'journeys:watch', kind .. ':' .. value) == 1 then
    redis.call('XADD', 'stream:journeys', 'MAXLEN', '~', '1000000', '*', 'customer', id, 'kind', kind, 'value', value)
  end
end

local function stamp(v) return tonumber(string.match(v or '', '|(%d+)$') or '0') end
local function consentState(v) return string.match(v or '', '^([^|]*)') or '' end

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
local function daysFromCivil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Milliseconds since the epoch of a datetime in the form the gateway stores (CustomerAttributes:
-- YYYY-MM-DDTHH:MM:SS then Z or +HH:MM / -HH:MM), or nil.
local function isoMillis(v)
  local y, mo, d, h, mi, s, tz = string.match(v, '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$')
  if not y then return nil end
  local secs = ((daysFromCivil(tonumber(y), tonumber(mo), tonumber(d)) * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60 + tonumber(s)
  if tz ~= 'Z' then
    local sign, th, tm = string.match(tz, '^([+-])(%d%d):(%d%d)$')
    if not sign then return nil end
    local off = (tonumber(th) * 60 + tonumber(tm)) * 60
    if sign == '+' then secs = secs - off else secs = secs + off end
  end
  return secs * 1000
end

-- The attribute indexes (`pidx:<attribute>` sorted sets, see Keys.attributeIndex) a customer's hash
-- puts it in, as membership name -> { key, score, member }. The schema (attribute -> n number,
-- d datetime, s text matched without ASCII case) is data the gateway writes at start
-- (Keys.attributeSchema); text members are `<lowercase value>\31<id>` (ZRANGE BYLEX finds a value).
-- `schema`: the schema already read (a caller reindexing many customers reads it once), or nil.
local function attributeEntries(id, f, schema)
  local out = {}
  if f.lastSeenAt then out['@lastSeen'] = { ix('lastseen'), tonumber(f.lastSeenAt), id } end
  schema = schema or shardSchema or redis.call('HGETALL', 'schema:attributes')
  for i = 1, #schema, 2 do
    local name, kind = schema[i], schema[i + 1]
    local v = f['profile.' .. name]
    if v then
      local key = ix('pidx', name)
      if kind == 'n' then
        local n = tonumber(v)
        if n then out['@' .. name] = { key, n, id } end
      elseif kind == 'd' then
        local ms = isoMillis(v)
        if ms then out['@' .. name] = { key, ms, id } end
      else
        local lower = string.lower(v)
        out['@' .. name .. '\31' .. lower] = { key, 0, lower .. '\31' .. id }
      end
    end
  end
  return out
end

-- The field indexes audiences read (`fidx:<name>` sets of customer ids, see Keys.fieldIndex):
-- all, account:<a>, consent:wechat, consent:wechat:<a>, consent:sms, consent:email, optin:sms,
-- optin:email (consent granted), stage:<s>, tier:<t>; and the attribute indexes above.
-- Recomputed from the customer's hash and identities; `cust:{id}:fidx` remembers which ones hold
-- the customer, so a change (or a merge, which empties the loser) removes stale entries.
-- `schema`: see attributeEntries.
local function reindex(id, schema)
  local h = redis.call('HGETALL', ckey(id))
  local f = {}
  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
  local want = {}
  local live = f.createdAt and not f.mergedInto
  if live then
    want['all'] = true
    local phone, email = false, false
    for _, ident in ipairs(redis.call('SMEMBERS', idskey(id))) do
      local kind, rest = string.match(ident, '^(%w+):(.*)$')
      if kind == 'openid' or kind == 'wecom' or kind == 'douyin' then
        local acc = string.match(rest, '^([^:]*):')
        if acc then
          want['account:' .. acc] = true
          if kind == 'openid' and consentState(f['consent.wechat:' .. acc]) ~= 'revoked' then
            want['consent:wechat'] = true
            want['consent:wechat:' .. acc] = true
          end
        end
      elseif kind == 'phone' then phone = true
      elseif kind == 'email' then email = true end
    end
    local sms = consentState(f['consent.sms'])
    if phone and sms ~= 'revoked' and sms ~= 'opted_out' then want['consent:sms'] = true end
    if phone and sms == 'granted' then want['optin:sms'] = true end
    local em = consentState(f['consent.email'])
    if email and em ~= 'revoked' and em ~= 'unsubscribed' and em ~= 'bounced' and em ~= 'complained' then
      want['consent:email'] = true
    end
    if email and em == 'granted' then want['optin:email'] = true end
    if f.stage then want['stage:' .. f.stage] = true end
    if f.tier then want['tier:' .. f.tier] = true end
  end
  local attrs = {}
  if live then attrs = attributeEntries(id, f, schema) end
  local gone, added = {}, {}
  for _, name in ipairs(redis.call('SMEMBERS', fidxkey(id))) do
    if string.sub(name, 1, 1) == '@' then
      if not attrs[name] then
        local attr, lower = string.match(name, '^@([^\31]*)\31(.*)$')
        if attr then redis.call('ZREM', ix('pidx', attr), lower .. '\31' .. id)
        elseif name == '@lastSeen' then redis.call('ZREM', ix('lastseen'), id)
        else redis.call('ZREM', ix('pidx', string.sub(name, 2)), id) end
        gone[#gone + 1] = name
      end
    elseif want[name] then want[name] = nil
    else
      redis.call('SREM', ix('fidx', name), id)
      gone[#gone + 1] = name
    end
  end
  for name in pairs(want) do
    redis.call('SADD', ix('fidx', name), id)
    added[#added + 1] = name
  end
  for name, e in pairs(attrs) do
    redis.call('ZADD', e[1], e[2], e[3])
    added[#added + 1] = name
  end
  if #gone > 0 then redis.call('SREM', fidxkey(id), unpack(gone)) end
  if #added > 0 then redis.call('SADD', fidxkey(id), unpack(added)) end
  -- Every script that changes a customer reindexes it: the one place a CRM resync is noticed.
  if live and f.qualifiedAt then crmTouch(id) end
end

-- A live customer interacted now: lastSeenAt and its index entry, without a whole reindex (a click
-- storm touches nothing else). A customer that had lastSeenAt was reindexed with it, so its
-- '@lastSeen' entry is listed already; only a first lastSeenAt lists it.
local function touchLastSeen(id, now)
  if redis.call('HSET', ckey(id), 'lastSeenAt', now) == 1 then redis.call('SADD', fidxkey(id), '@lastSeen') end
  redis.call('ZADD', ix('lastseen'), now, id)
end

-- Tags a customer: its tag set, each tag's audience index, the set of every tag name; a tag new to
-- the customer signals the journeys. The one home of "add a tag". Returns how many were new.
local function addTags(id, tags)
  if #tags == 0 then return 0 end
  local added = 0
  for _, t in ipairs(tags) do
    if redis.call('SADD', tagskey(id), t) == 1 then
      added = added + 1
      journeySignal(id, 'tag', t)
    end
    redis.call('SADD', ix('tag', t), id)
  end
  -- Keys.tags is one key of its own: a sharded caller adds the names itself.
  if shard == '' then redis.call('SADD', 'tags', unpack(tags)) end
  return added
end

-- Untags a customer (its tag set and each tag's index). Returns how many it had.
local function removeTags(id, tags)
  local removed = 0
  for _, t in ipairs(tags) do
    removed = removed + redis.call('SREM', tagskey(id), t)
    redis.call('SREM', ix('tag', t), id)
  end
  return removed
end

local function pushTimeline(id, entry, cap)
  if redis.call('LPUSH', tlkey(id), entry) > cap then redis.call('LTRIM', tlkey(id), 0, cap - 1) end
end

-- Scores decay: with a half-life H (ms), a score S set at `at` is worth S * 2^(-(t - at) / H) at t
-- (ScoringRules.halfLifeDays; H = 0: no decay). The one home of that rule.
local function decayedScore(score, at, now, halfLife)
  if halfLife > 0 and now > at then return score * math.pow(0.5, (now - at) / halfLife) end
  return score
end

-- The scores index (Keys.scores) orders customers by their decayed score at any time without being
-- rewritten as time passes: it stores log2(S) + at / H, and "decayed score >= x at t" is the range
-- from log2(x) + t / H (scoreBound). Without decay the value is the score itself. `scores:meta`
-- holds the H it is built with (halfLifeMs) and, while it is rebuilt for a new H, that H
-- (buildHalfLifeMs) with the new index in `scores:build` (see scores.lua); on a cluster each shard
-- has its own three (scores:{<t>}:meta ...).
local function scoreIndexValue(score, at, halfLife)
  if halfLife <= 0 then return score end
  if score <= 0 then return -math.huge end
  return math.log(score) / math.log(2) + at / halfLife
end

local function scoreBound(x, now, halfLife)
  if halfLife <= 0 then return x end
  if x <= 0 then return -math.huge end
  return math.log(x) / math.log(2) + now / halfLife
end

local function scoreText(v) return string.format('%.17g', v) end

-- The half-lives of a shard's scores index: the one it is built with, and the one it is being rebuilt
-- with (or nil). Each shard keeps its own (ix('scores', 'meta'): scores:meta on a single Redis), so a
-- write and the rebuild of its shard agree atomically (ScoreStore.build).
local function scoreHalfLives(metaKey)
  local m = redis.call('HMGET', metaKey or ix('scores', 'meta'), 'halfLifeMs', 'buildHalfLifeMs')
  return tonumber(m[1] or '0'), m[2] and tonumber(m[2])
end

-- Puts a customer in the scores index (and the one being built) from its hash, or takes it out when
-- it has no score or was merged away.
local function indexScore(id)
  local h = redis.call('HMGET', ckey(id), 'score', 'scoreAt', 'mergedInto')
  local current, building = scoreHalfLives()
  if not h[1] or h[3] then
    redis.call('ZREM', ix('scores'), id)
    if building then redis.call('ZREM', ix('scores', 'build'), id) end
    return
  end
  local s, at = tonumber(h[1]), tonumber(h[2] or '0')
  redis.call('ZADD', ix('scores'), scoreText(scoreIndexValue(s, at, current)), id)
  if building then redis.call('ZADD', ix('scores', 'build'), scoreText(scoreIndexValue(s, at, building)), id) end
end

-- A merge in three phases, each touching one customer's slot (on a cluster the gateway runs them as
-- steps: CustomerStore.mergeInSteps; merge below runs them in one call on a single Redis).

-- mergeExport: what the losing customer holds, to be absorbed by the survivor.
local function mergeExport(lose)
  return {
    hash = redis.call('HGETALL', ckey(lose)), ids = redis.call('SMEMBERS', idskey(lose)),
    tags = redis.call('SMEMBERS', tagskey(lose)), timeline = redis.call('LRANGE', tlkey(lose), 0, -1),
    camps = redis.call('HGETALL', campskey(lose)),
  }
end

-- mergeAbsorb: the survivor takes the loser's identities, tags, fields (first seen the earliest, last
-- seen the latest, each consent the newest, other fields only where it has none), timeline (merged
-- by time, capped) and campaign exposures (its own kept where both have one). Once per loser: the
-- survivor's merged set (Keys.customerMerged) records it. Returns false when it had absorbed it already.
local function mergeAbsorb(win, lose, data, now, cap)
  if redis.call('SADD', 'cust:{' .. win .. '}:merged', lose) == 0 then return false end
  for _, ident in ipairs(data.ids) do redis.call('SADD', idskey(win), ident) end
  for _, t in ipairs(data.tags) do
    redis.call('SADD', ix('tag', t), win)
    redis.call('SADD', tagskey(win), t)
  end
  local h = data.hash
  for i = 1, #h, 2 do
    local f, v = h[i], h[i + 1]
    if f == 'firstSeenAt' then
      local w = tonumber(redis.call('HGET', ckey(win), f) or v)
      if tonumber(v) < w then redis.call('HSET', ckey(win), f, v) end
    elseif f == 'lastSeenAt' then
      local w = tonumber(redis.call('HGET', ckey(win), f) or '0')
      if tonumber(v) > w then redis.call('HSET', ckey(win), f, v) end
    elseif string.sub(f, 1, 8) == 'consent.' then
      local w = redis.call('HGET', ckey(win), f)
      if (not w) or stamp(v) > stamp(w) then redis.call('HSET', ckey(win), f, v) end
    elseif f ~= 'id' and f ~= 'createdAt' and f ~= 'mergingInto' then
      redis.call('HSETNX', ckey(win), f, v)
    end
  end
  local lost = data.timeline
  if #lost > 0 then
    local all = redis.call('LRANGE', tlkey(win), 0, -1)
    for _, e in ipairs(lost) do all[#all + 1] = e end
    local keyed = {}
    for i, e in ipairs(all) do
      local ok, d = pcall(cjson.decode, e)
      keyed[i] = { at = (ok and tonumber(d.at)) or 0, e = e, i = i }
    end
    table.sort(keyed, function(x, y) if x.at ~= y.at then return x.at > y.at end return x.i < y.i end)
    redis.call('DEL', tlkey(win))
    for i = 1, math.min(#keyed, cap) do redis.call('RPUSH', tlkey(win), keyed[i].e) end
  end
  local camps = data.camps
  for i = 1, #camps, 2 do redis.call('HSETNX', campskey(win), camps[i], camps[i + 1]) end
  pushTimeline(win, cjson.encode({ at = tonumber(now), type = 'customer.merged', data = { merged = lose } }), cap)
  return true
end

-- mergeRetire: the loser becomes a redirect stub (mergedInto, mergedAt) and leaves every index of its
-- shard. Returns false when it was a stub already.
local function mergeRetire(lose, win, now)
  if redis.call('HEXISTS', ckey(lose), 'mergedInto') == 1 then return false end
  for _, t in ipairs(redis.call('SMEMBERS', tagskey(lose))) do redis.call('SREM', ix('tag', t), lose) end
  redis.call('DEL', idskey(lose), tagskey(lose), tlkey(lose), ckey(lose), campskey(lose))
  redis.call('HSET', ckey(lose), 'mergedInto', win, 'mergedAt', now)
  reindex(lose)
  indexScore(lose)
  redis.call('ZREM', ix('customers'), lose)
  return true
end

-- The older customer (createdAt, then id) survives a merge: the one home of that rule.
local function mergeOrder(a, createdA, b, createdB)
  local ca, cb = tonumber(createdA or '0'), tonumber(createdB or '0')
  if cb < ca or (cb == ca and b < a) then return b, a end
  return a, b
end

-- Merges two customers in one call (a single Redis). Returns survivor, merged.
local function merge(a, b, now, cap, streamMax)
  if a == b then return a, nil end
  local win, lose = mergeOrder(a, redis.call('HGET', ckey(a), 'createdAt'), b, redis.call('HGET', ckey(b), 'createdAt'))
  local data = mergeExport(lose)
  for _, ident in ipairs(data.ids) do redis.call('SET', 'idx:' .. ident, win) end
  mergeAbsorb(win, lose, data, now, cap)
  mergeRetire(lose, win, now)
  indexScore(win)
  -- Who was merged into whom (Keys.customerMerged) is the survivor's merged set: an erasure or
  -- export finds the stubs by it.
  redis.call('XADD', 'stream:inbound', 'MAXLEN', '~', streamMax, '*', 'type', 'customer.merged',
    'customer', win, 'merged', lose, 'at', now)
  return win, lose
end

-- extra: more field/value pairs for the new hash (e.g. a consent), written in the same HSET.
-- createRecord writes the customer's own keys only (a cluster's ingest step: the caller claimed the
-- identity index already); create also points the identity index at it.
local function createRecord(id, now, identity, extra)
  redis.call('HSET', ckey(id), 'id', id, 'createdAt', now, 'firstSeenAt', now, 'lastSeenAt', now, unpack(extra or {}))
  redis.call('ZADD', ix('customers'), now, id)
  redis.call('SADD', idskey(id), identity)
end

local function create(id, now, identity, extra)
  createRecord(id, now, identity, extra)
  redis.call('SET', 'idx:' .. identity, id)
end

-- Binds an identity to a customer; merges when another customer holds it. Returns the survivor.
local function bind(id, identity, now, cap, streamMax)
  local owner = redis.call('GET', 'idx:' .. identity)
  if not owner then
    redis.call('SET', 'idx:' .. identity, id)
    redis.call('SADD', idskey(id), identity)
    return id, nil, 'bound'
  end
  local live
  owner, live = resolveLive(owner)
  if owner == id then return id, nil, 'exists' end
  if not live then
    redis.call('SET', 'idx:' .. identity, id)
    redis.call('SADD', idskey(id), identity)
    return id, nil, 'bound'
  end
  local win, lose = merge(id, owner, now, cap, streamMax)
  return win, lose, 'merged'
end

-- Two live customers collide on an identity the caller did not vouch for (or may not merge on): a
-- merge candidate for a person to accept or reject (MergeCandidateStore), once per pair. The identity
-- stays with its owner. Keys mirror Keys.mergeCandidate*, sorted pair first.
local function mergeCandidate(a, b, identity, source, actor, newId, now)
  local lo, hi = a, b
  if hi < lo then lo, hi = b, a end
  local pair = 'mergecand:pair:{' .. lo .. ':' .. hi .. '}'
  if redis.call('EXISTS', pair) == 1 then return end
  redis.call('SET', pair, newId)
  redis.call('HSET', 'mergecand:{' .. newId .. '}', 'customer', a, 'other', b, 'identity', identity, 'source', source,
    'actor', actor, 'createdAt', now, 'state', 'pending')
  redis.call('ZADD', 'mergecands:pending', now, newId)
  -- Keys.customerMergeCandidates: an erasure or export finds a customer's candidates by it.
  redis.call('SADD', 'cust:{' .. a .. '}:mergecands', newId)
  redis.call('SADD', 'cust:{' .. b .. '}:mergecands', newId)
end
