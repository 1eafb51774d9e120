-- The scores index for a new half-life (ScoringRules.halfLifeDays changed): built beside the live
-- one and swapped in, so audiences keep an index that is whole and consistent with its own H while
-- it is built. Scoring writes both meanwhile (indexScore). See scoreIndexValue in customer_base.lua.

-- The rebuild is shard by shard on a cluster: each shard's own meta (scores:{<t>}:meta) says which H
-- its index and its build have, so writes to a shard agree with its rebuild. scores:meta is then the
-- record of the rebuild as a whole. On a single Redis the one shard's keys are these.

-- score_index_begin: KEYS: scores:meta, scores:build (none on a cluster, whose shards have their own).
-- ARGV: the half-life (ms) wanted. Also run in each shard of a cluster (its meta and build) after it
-- ran on scores:meta.
-- Returns 'current' (the index has it), 'building' (a build for it is under way or just started).
register('score_index_begin', function(keys, args)
  local m = redis.call('HMGET', keys[1], 'halfLifeMs', 'buildHalfLifeMs')
  local want = tonumber(args[1])
  if tonumber(m[1] or '0') == want and not m[2] then return 'current' end
  if not m[2] or tonumber(m[2]) ~= want then
    if keys[2] then redis.call('DEL', keys[2]) end
    redis.call('HSET', keys[1], 'buildHalfLifeMs', args[1])
  end
  return 'building'
end)

-- score_index_build: KEYS: a shard's meta and build, then the customer hashes of ARGV[2...] (of that
-- shard). ARGV: the half-life being built, then customer ids. Returns how many were indexed (0 when
-- that build was replaced by another).
register('score_index_build', function(keys, args)
  local _, building = scoreHalfLives(keys[1])
  if building ~= tonumber(args[1]) then return 0 end
  local n = 0
  for i = 2, #args do
    local h = redis.call('HMGET', keys[i + 1], 'score', 'scoreAt', 'mergedInto')
    if h[1] and not h[3] then
      redis.call('ZADD', keys[2], scoreText(scoreIndexValue(tonumber(h[1]), tonumber(h[2] or '0'), building)), args[i])
      n = n + 1
    end
  end
  return n
end)

-- score_index_swap: KEYS: a shard's meta, scores, build. ARGV: the half-life built.
-- Returns 1 when swapped in (or it was already), 0 when that build is not the current one.
register('score_index_swap', function(keys, args)
  local current, building = scoreHalfLives(keys[1])
  if not building and current == tonumber(args[1]) then return 1 end
  if building ~= tonumber(args[1]) then return 0 end
  if redis.call('EXISTS', keys[3]) == 1 then redis.call('RENAME', keys[3], keys[2]) else redis.call('DEL', keys[2]) end
  redis.call('HSET', keys[1], 'halfLifeMs', args[1])
  redis.call('HDEL', keys[1], 'buildHalfLifeMs')
  return 1
end)

-- customer_scores: the scores as they are now (decayed with the index's half-life).
-- KEYS: the shard's scores meta, then customer hashes (of that shard). ARGV: now (ms).
-- Returns one text per customer ('' = none).
register('customer_scores', function(keys, args)
  local now = tonumber(args[1])
  local halfLife = scoreHalfLives(keys[1])
  local out = {}
  for i = 2, #keys do
    local h = redis.call('HMGET', keys[i], 'score', 'scoreAt')
    if h[1] then out[#out + 1] = string.format('%.4f', decayedScore(tonumber(h[1]), tonumber(h[2] or args[1]), now, halfLife))
    else out[#out + 1] = '' end
  end
  return out
end)

-- lease_release: gives a lease up if this owner still holds it (the scores index build, campaign
-- planners). KEYS: the lease. ARGV: the owner.
register('lease_release', function(keys, args)
  if redis.call('GET', keys[1]) == args[1] then return redis.call('DEL', keys[1]) end
  return 0
end)

-- score_touch (sharded): an interaction no rule scores (ScoreStore.touch): a qualified customer's CRM
-- record still gets it (coalesced). KEYS: the customer's hash. ARGV: the customer id.
-- Returns { 1 } | { 'moved', survivor }, then what it emitted.
register('score_touch', sharded(function(keys, args)
  local id, live, survivor = hereOrMoved(args[1])
  if survivor then return { 'moved', survivor } end
  if live then crmTouch(id, 'interaction') end
  return { 1 }
end))

-- score_apply: scores one interaction (ScoreStore.apply), once per interaction id: the decayed score
-- plus each hit rule's points (a rule's daily cap counted per Beijing day), the tags the rules add,
-- the stage and tier the rules give (ScoringRules, passed as data) and qualification.
-- Sharded. KEYS: the customer's hash, then the interaction's scored mark (IndexShards.scoredMark;
-- none for a refresh).
-- ARGV: customer, interaction id ('' = a refresh), now, day, half-life ms, the stages, the timeline
-- cap, the qualifying rank, the tiers, the hits (see ScoreStore.apply for the layout). Returns { 'ok', id, score, stage, previous stage, qualified,
-- rules applied } | { 'dup' } | { 'gone' } | { 'moved', survivor }, then what it emitted.
register('score_apply', sharded(function(keys, args)
  local id, live, survivor = hereOrMoved(args[1])
  if survivor then return { 'moved', survivor } end
  if not live then return { 'gone' } end
  -- No interaction: a refresh (the tier again with the decayed score), not deduplicated.
  if keys[2] and not redis.call('SET', keys[2], '1', 'NX', 'EX', 604800) then
    -- On a cluster the first try's CRM touch was returned to a caller that may have stopped before
    -- appending it: the try again touches again (the CRM queue coalesces; a lost touch would leave
    -- a qualified lead unsynced). On a single Redis the first try appended it in the same call.
    if emitted then crmTouch(id, 'interaction') end
    return { 'dup' }
  end
  local now, halfLife = tonumber(args[3]), tonumber(args[5])
  local h = redis.call('HMGET', ckey(id), 'score', 'scoreAt', 'stage')
  if args[2] == '' and not h[1] then return { 'gone' } end
  local score = decayedScore(tonumber(h[1] or '0'), tonumber(h[2] or args[3]), now, halfLife)
  local i = 6
  local stages = {}
  for k = 1, tonumber(args[i]) do stages[k] = { args[i + 2 * k - 1], tonumber(args[i + 2 * k]) } end
  i = i + 1 + 2 * #stages
  local cap = tonumber(args[i])
  local qrank = tonumber(args[i + 1])
  local tiers = {}
  local nt = tonumber(args[i + 2])
  i = i + 3
  for k = 1, nt do
    local t = { name = args[i], min = tonumber(args[i + 1]) }
    local ns = tonumber(args[i + 2])
    t.stages = { unpack(args, i + 3, i + 2 + ns) }
    i = i + 3 + ns
    local ntg = tonumber(args[i])
    t.tags = { unpack(args, i + 1, i + ntg) }
    i = i + 1 + ntg
    local np = tonumber(args[i])
    t.profile = { unpack(args, i + 1, i + 2 * np) }
    i = i + 1 + 2 * np
    tiers[k] = t
  end
  local nh = tonumber(args[i])
  i = i + 1
  local applied, qualified = {}, 0
  local counts = 'cust:{' .. id .. '}:rules:' .. args[4]
  for _ = 1, nh do
    local rule, pts, max, q, nt = args[i], tonumber(args[i + 1]), tonumber(args[i + 2]), args[i + 3], tonumber(args[i + 4])
    local tags = { unpack(args, i + 5, i + 4 + nt) }
    i = i + 5 + nt
    local ok = true
    if max > 0 then
      local n = redis.call('HINCRBY', counts, rule, 1)
      redis.call('EXPIRE', counts, 172800)
      ok = n <= max
    end
    if ok then
      score = score + pts
      addTags(id, tags)
      if q == '1' then qualified = 1 end
      applied[#applied + 1] = rule
      pushTimeline(id, cjson.encode({ at = now, type = 'score', data = { rule = rule, points = pts } }), cap)
    end
  end
  if score < 0 then score = 0 end
  -- The stage: the highest threshold reached; a stage
  -- reached is kept, and one no threshold gives (set by sales) outranks them all.
  local reached, ri = 'new', 0
  for k, s in ipairs(stages) do if score >= s[2] then reached, ri = s[1], k end end
  local current = h[3] or 'new'
  local stage = reached
  if current ~= 'new' then
    local ci = nil
    for k, s in ipairs(stages) do if s[1] == current then ci = k end end
    if not ci or ri <= ci then stage = current end
  end
  local text = string.format('%.4f', score)
  redis.call('HSET', ckey(id), 'score', text, 'scoreAt', args[3], 'stage', stage)
  if stage ~= current then journeySignal(id, 'stage', stage) end
  -- A qualified lead: from a qualify rule, or at (or above) the qualifying stage. Once
  -- qualified, every change is synced to the CRM (reindex below notices it).
  if qualified == 0 and qrank > 0 and stage ~= 'new' then
    local si = nil
    for k, s in ipairs(stages) do if s[1] == stage then si = k end end
    if (not si) or si >= qrank then qualified = 1 end
  end
  -- The value tier, as ScoringRules.tier: the first whose conditions all hold.
  if #tiers > 0 then
    local tier = nil
    for _, t in ipairs(tiers) do
      local ok = (not t.min) or score >= t.min
      if ok and #t.stages > 0 then
        ok = false
        for _, s in ipairs(t.stages) do if s == stage then ok = true end end
      end
      for _, tg in ipairs(t.tags) do if ok and redis.call('SISMEMBER', tagskey(id), tg) == 0 then ok = false end end
      for k = 1, #t.profile, 2 do if ok and redis.call('HGET', ckey(id), t.profile[k]) ~= t.profile[k + 1] then ok = false end end
      if ok then tier = t.name; break end
    end
    if tier then redis.call('HSET', ckey(id), 'tier', tier) else redis.call('HDEL', ckey(id), 'tier') end
  end
  if qualified == 1 and redis.call('HSETNX', ckey(id), 'qualifiedAt', args[3]) == 1 then
    pushTimeline(id, cjson.encode({ at = now, type = 'lead.qualified', data = { stage = stage } }), cap)
  end
  indexScore(id)
  reindex(id)
  return { 'ok', id, text, stage, current, qualified, applied }
end))
