-- The scores index for a new half-life (ScoringRules.halfLifeDays changed): built beside the live
-- one and swapped in, so audiences keep an index that is whole and consistent with its own H while
-- it is built. Scoring writes both meanwhile (indexScore). See scoreIndexValue in customer_base.lua.

-- score_index_begin: KEYS: scores:meta, scores:build. ARGV: the half-life (ms) wanted.
-- Returns 'current' (the index has it), 'building' (a build for it is under way or just started).
register('score_index_begin', function(keys, args)
  local m = redis.call('HMGET', keys[1], 'halfLifeMs', 'buildHalfLifeMs')
  local want = tonumber(args[1])
  if tonumber(m[1] or '0') == want and not m[2] then return 'current' end
  if not m[2] or tonumber(m[2]) ~= want then
    redis.call('DEL', keys[2])
    redis.call('HSET', keys[1], 'buildHalfLifeMs', args[1])
  end
  return 'building'
end)

-- score_index_build: KEYS: scores:meta, scores:build, then the customer hashes of ARGV[2...].
-- ARGV: the half-life being built, then customer ids. Returns how many were indexed (0 when that
-- build was replaced by another).
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

-- score_index_swap: KEYS: scores:meta, scores, scores:build. ARGV: the half-life built.
-- Returns 1 when swapped in, 0 when that build is not the current one.
register('score_index_swap', function(keys, args)
  local _, building = scoreHalfLives(keys[1])
  if building ~= tonumber(args[1]) then return 0 end
  if redis.call('EXISTS', keys[3]) == 1 then redis.call('RENAME', keys[3], keys[2]) else redis.call('DEL', keys[2]) end
  redis.call('HSET', keys[1], 'halfLifeMs', args[1])
  redis.call('HDEL', keys[1], 'buildHalfLifeMs')
  return 1
end)

-- customer_scores: the scores as they are now (decayed with the index's half-life).
-- KEYS: scores:meta, then customer hashes. ARGV: now (ms). Returns one text per customer ('' = none).
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
