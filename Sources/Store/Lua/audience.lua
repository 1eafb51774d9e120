-- audience_count: the size of an audience of the form P1 & P2 & ... & !N1 & !N2 ... (sets only, at most
-- a few negatives) and a random sample of it, without writing anything: a preview of the common
-- audience in a few set walks instead of building intermediate sets of hundreds of thousands.
-- The count is |P1 ∩ ... ∩ Pn| minus |P ∩ (N1 ∪ ...)| by inclusion-exclusion over the negatives,
-- each term one SINTERCARD. The sample is drawn from the smallest positive set and kept when its
-- members pass the other sets (a uniform sample of the audience); when the audience is too rare a
-- part of that set for a few thousand draws to find the sample, the answer says so and the caller
-- evaluates the audience in full (AudienceStore.preview).
-- KEYS: the positive sets, then the negative sets (Keys.tag, Keys.fieldIndex).
-- ARGV: how many KEYS are positive, the sample size, the most draws to make.
-- Returns { count, sample ids, 1 when the sample is complete or 0 }.
register('audience_count', function(keys, args)
  local np, sample, maxDraws = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  local pos, neg = {}, {}
  for i = 1, #keys do
    if i <= np then pos[#pos + 1] = keys[i] else neg[#neg + 1] = keys[i] end
  end
  local function card(ks)
    if #ks == 1 then return redis.call('SCARD', ks[1]) end
    return redis.call('SINTERCARD', #ks, unpack(ks))
  end
  local count = 0
  for mask = 0, 2 ^ #neg - 1 do
    local ks, bits, m = { unpack(pos) }, 0, mask
    for j = 1, #neg do
      if m % 2 == 1 then ks[#ks + 1] = neg[j]; bits = bits + 1 end
      m = math.floor(m / 2)
    end
    local c = card(ks)
    if bits % 2 == 0 then count = count + c else count = count - c end
  end
  if sample == 0 or count == 0 then return { count, {}, 1 } end
  local smallest, size = nil, math.huge
  for _, k in ipairs(pos) do
    local n = redis.call('SCARD', k)
    if n < size then smallest, size = k, n end
  end
  -- Twice the draws the audience's share of the set needs on average, and a few more.
  local draws = math.min(size, math.ceil(sample * 2 * size / count) + 16)
  if draws > maxDraws then return { count, {}, 0 } end
  local candidates = redis.call('SRANDMEMBER', smallest, draws)
  local checks = {}
  for _, k in ipairs(pos) do
    if k ~= smallest then checks[#checks + 1] = { k, 1 } end
  end
  for _, k in ipairs(neg) do checks[#checks + 1] = { k, 0 } end
  local answers = {}
  for c, check in ipairs(checks) do answers[c] = redis.call('SMISMEMBER', check[1], unpack(candidates)) end
  local picked = {}
  for m = 1, #candidates do
    local ok = true
    for c, check in ipairs(checks) do
      if answers[c][m] ~= check[2] then ok = false; break end
    end
    if ok then
      picked[#picked + 1] = candidates[m]
      if #picked == sample then break end
    end
  end
  return { count, picked, (#picked == math.min(sample, count)) and 1 or 0 }
end)

-- audience_estimate: any audience of tags and fields (with &, |, !), estimated from a random draw
-- instead of counted: `draws` distinct members of the smallest anchor set (a set every member must
-- be in; the caller passes all customers when there is none) are run through the expression, given
-- as a postfix program over membership of the sets. That takes a few milliseconds however large the
-- sets. When the anchor has no more members than the draw, all are checked and the count is exact.
-- The estimate and its margin are worked out by the caller (AudienceEstimate).
-- KEYS: the anchor sets, then the other sets the program reads (Keys.tag, Keys.fieldIndex).
-- ARGV: how many KEYS are anchors, the sample size, the draws, then the program: `k<i>` pushes
-- "is a member of KEYS[i]", `!` negates the top, `&` and `|` combine the top two.
-- Returns { members that passed, members checked, size of the set drawn from, sample ids (up to
-- the sample size, of those that passed) }.
register('audience_estimate', function(keys, args)
  local na, sample, draws = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  local source, size = 1, math.huge
  for i = 1, na do
    local n = redis.call('SCARD', keys[i])
    if n < size then source, size = i, n end
  end
  if size == 0 then return { 0, 0, 0, {} } end
  local candidates
  if size <= draws then candidates = redis.call('SMEMBERS', keys[source]) else candidates = redis.call('SRANDMEMBER', keys[source], draws) end
  local program, member = {}, {}
  for t = 4, #args do
    local token = args[t]
    if string.sub(token, 1, 1) == 'k' then
      local k = tonumber(string.sub(token, 2))
      program[#program + 1] = k
      if not member[k] then
        local answers = {}
        if k == source then
          for m = 1, #candidates do answers[m] = 1 end
        else
          for c0 = 1, #candidates, 1000 do
            local chunk = redis.call('SMISMEMBER', keys[k], unpack(candidates, c0, math.min(c0 + 999, #candidates)))
            for m = 1, #chunk do answers[c0 + m - 1] = chunk[m] end
          end
        end
        member[k] = answers
      end
    else
      program[#program + 1] = token
    end
  end
  local hits, picked = 0, {}
  for m = 1, #candidates do
    local stack, top = {}, 0
    for _, op in ipairs(program) do
      if op == '!' then stack[top] = not stack[top]
      elseif op == '&' then top = top - 1; stack[top] = stack[top] and stack[top + 1]
      elseif op == '|' then top = top - 1; stack[top] = stack[top] or stack[top + 1]
      else top = top + 1; stack[top] = member[op][m] == 1 end
    end
    if stack[1] then
      hits = hits + 1
      if #picked < sample then picked[#picked + 1] = candidates[m] end
    end
  end
  return { hits, #candidates, size, picked }
end)

-- audience_evaluate: ARGV: result key, destination ('' = preview only), sample size, temp prefix, then ops:
-- name, dest, n, then n sources (inter, union, diff: first minus the rest), or for range a sorted
-- set and n (min, max) score ranges, for scores the scores index, now, the index's meta (its half-life)
-- and n ranges of decayed scores, or for lex a sorted set and a member prefix (n = 1).
register('audience_evaluate', function(keys, args)
  local result, dest, sample, prefix = args[1], args[2], tonumber(args[3]), args[4]
  -- A preview stores nothing: its temporary sets are neither written to the AOF nor sent to
  -- replicas (a snapshot is, since its result must survive).
  if dest == '' then redis.set_repl(redis.REPL_NONE) end
  local temps = {}
  -- Ranges of a sorted set are kept lazy (out key -> zset and bounds) and only turned into a
  -- set when they must be: a count is ZCOUNT, an intersection with a smaller set checks that
  -- set's members with ZMSCORE, and a set is read by rank (never LIMIT offsets, which walk).
  local lazy = {}
  local function bound(b)
    local open = string.sub(b, 1, 1) == '('
    if open then b = string.sub(b, 2) end
    local v = (b == '+inf' or b == 'inf') and math.huge or (b == '-inf' and -math.huge or tonumber(b))
    return v, open
  end
  local function lazyCount(l)
    local n = 0
    for _, r in ipairs(l.ranges) do n = n + redis.call('ZCOUNT', l.key, r[1], r[2]) end
    return n
  end
  -- The rank of the first member at or above a lower bound.
  local function firstRank(key, lo)
    if lo == '-inf' then return 0 end
    if string.sub(lo, 1, 1) == '(' then return redis.call('ZCOUNT', key, '-inf', string.sub(lo, 2)) end
    return redis.call('ZCOUNT', key, '-inf', '(' .. lo)
  end
  -- A text attribute's members with one value (lazy too): ids `n` at a time from position `off`.
  local function lexIds(l, off, n)
    local members = redis.call('ZRANGE', l.key, l.first + off, l.first + math.min(off + n, l.n) - 1)
    local ids = {}
    for m = 1, #members do ids[m] = string.sub(members[m], l.cut) end
    return ids
  end
  local function materialize(name)
    local l = lazy[name]
    if not l then return end
    lazy[name] = nil
    redis.call('DEL', name)
    if l.lex then
      for off = 0, l.n - 1, 5000 do
        local ids = lexIds(l, off, 5000)
        if #ids > 0 then redis.call('SADD', name, unpack(ids)) end
      end
      return
    end
    for _, r in ipairs(l.ranges) do
      local first, n = firstRank(l.key, r[1]), redis.call('ZCOUNT', l.key, r[1], r[2])
      for off = 0, n - 1, 5000 do
        local ids = redis.call('ZRANGE', l.key, first + off, first + math.min(off + 4999, n - 1))
        if #ids > 0 then redis.call('SADD', name, unpack(ids)) end
      end
    end
  end
  local function inRanges(l, v)
    if not v then return false end
    v = tonumber(v)
    for _, r in ipairs(l.parsed) do
      if (v > r[1] or (v == r[1] and not r[2])) and (v < r[3] or (v == r[3] and not r[4])) then return true end
    end
    return false
  end
  local i = 5
  while i <= #args do
    local op, out, n = args[i], args[i + 1], tonumber(args[i + 2])
    temps[#temps + 1] = out
    if op == 'range' or op == 'scores' then
      local key = args[i + 3]
      local first, convert = i + 4, function(b) return b end
      if op == 'scores' then
        -- Bounds are decayed scores at `now`: turned into index values with the index's half-life.
        local now, halfLife = tonumber(args[i + 4]), scoreHalfLives(args[i + 5])
        first = i + 6
        convert = function(b)
          if b == '+inf' or b == '-inf' then return b end
          local open = string.sub(b, 1, 1) == '('
          local v = scoreText(scoreBound(tonumber(open and string.sub(b, 2) or b), now, halfLife))
          return open and '(' .. v or v
        end
      end
      local l = { key = key, ranges = {}, parsed = {} }
      for r = 0, n - 1 do
        local lo, hi = convert(args[first + 2 * r]), convert(args[first + 1 + 2 * r])
        l.ranges[#l.ranges + 1] = { lo, hi }
        local lv, lx = bound(lo)
        local hv, hx = bound(hi)
        l.parsed[#l.parsed + 1] = { lv, lx, hv, hx }
      end
      lazy[out] = l
      i = first + 2 * n
    elseif op == 'lex' then
      local key, pfx = args[i + 3], args[i + 4]
      -- Members are <value>\31<id>: the range [value\31, value\32) holds exactly that value.
      -- Every member has score 0, so lex order is rank order: read by rank, not LIMIT offsets.
      lazy[out] = { lex = true, key = key, cut = #pfx + 2, first = redis.call('ZLEXCOUNT', key, '-', '(' .. pfx .. '\31'),
        n = redis.call('ZLEXCOUNT', key, '[' .. pfx .. '\31', '(' .. pfx .. '\32') }
      i = i + 5
    elseif op == 'inter' then
      local sets, ranges, lexes = {}, {}, {}
      for k = i + 3, i + 2 + n do
        local l = lazy[args[k]]
        if not l then sets[#sets + 1] = args[k] elseif l.lex then lexes[#lexes + 1] = args[k] else ranges[#ranges + 1] = args[k] end
      end
      -- The smallest set (or text value) bounds the result; a range smaller than a quarter of
      -- it is read as a set instead of checked member by member.
      local smallest, source = math.huge, nil
      for _, k in ipairs(lexes) do
        if lazy[k].n < smallest then smallest, source = lazy[k].n, k end
      end
      for _, k in ipairs(sets) do smallest = math.min(smallest, redis.call('SCARD', k)) end
      if source and smallest < lazy[source].n then source = nil end
      -- Other text values are read as sets; the smallest one, if it is the smallest input, is read directly.
      for _, k in ipairs(lexes) do
        if k ~= source then materialize(k); sets[#sets + 1] = k end
      end
      local checks = {}
      table.sort(ranges, function(x, y) return lazyCount(lazy[x]) < lazyCount(lazy[y]) end)
      for _, k in ipairs(ranges) do
        local c = lazyCount(lazy[k])
        if (#sets == 0 and not source) or c * 4 < smallest then
          materialize(k)
          sets[#sets + 1] = k
          smallest = math.min(smallest, c)
        else
          checks[#checks + 1] = lazy[k]
        end
      end
      if #checks == 0 and not source then
        redis.call('SINTERSTORE', out, unpack(sets))
      else
        -- The smallest input's members, checked against the other sets (SMISMEMBER) and the
        -- ranges (ZMSCORE) a thousand at a time; only those that pass are written.
        table.sort(sets, function(x, y) return redis.call('SCARD', x) < redis.call('SCARD', y) end)
        local others, total, members = 2, 0, nil
        if source then
          others, total = 1, lazy[source].n
        else
          members = redis.call('SMEMBERS', sets[1])
          total = #members
        end
        redis.call('DEL', out)
        for c0 = 1, total, 1000 do
          local chunk
          if source then chunk = lexIds(lazy[source], c0 - 1, 1000) else chunk = { unpack(members, c0, math.min(c0 + 999, total)) } end
          local keep = {}
          local inSets, scores = {}, {}
          for si = others, #sets do inSets[si] = redis.call('SMISMEMBER', sets[si], unpack(chunk)) end
          for ci, l in ipairs(checks) do scores[ci] = redis.call('ZMSCORE', l.key, unpack(chunk)) end
          for m = 1, #chunk do
            local ok = true
            for si = others, #sets do if ok and inSets[si][m] == 0 then ok = false end end
            for ci, l in ipairs(checks) do if ok and not inRanges(l, scores[ci][m]) then ok = false end end
            if ok then keep[#keep + 1] = chunk[m] end
          end
          if #keep > 0 then redis.call('SADD', out, unpack(keep)) end
        end
      end
      i = i + 3 + n
    else
      for k = i + 3, i + 2 + n do materialize(args[k]) end
      local cmd = ({ union = 'SUNIONSTORE', diff = 'SDIFFSTORE' })[op]
      redis.call(cmd, out, unpack(args, i + 3, i + 2 + n))
      i = i + 3 + n
    end
  end
  local count, picked = 0, {}
  local l = lazy[result]
  if l and l.lex and dest == '' then
    -- One text value alone: counted with ZLEXCOUNT, sampled by random rank.
    count = l.n
    local t = redis.call('TIME')
    math.randomseed(tonumber(t[1]) + tonumber(t[2]))
    local seen = {}
    if l.n <= sample then picked = lexIds(l, 0, l.n) end
    for _ = 1, (l.n <= sample and 0 or sample * 3) do
      if #picked >= sample then break end
      local id = lexIds(l, math.random(0, l.n - 1), 1)[1]
      if id and not seen[id] then seen[id] = true; picked[#picked + 1] = id end
    end
  elseif l and dest == '' then
    -- One range alone: counted with ZCOUNT, sampled by random rank.
    local spans, total = {}, 0
    for _, r in ipairs(l.ranges) do
      local c = redis.call('ZCOUNT', l.key, r[1], r[2])
      spans[#spans + 1] = { firstRank(l.key, r[1]), c }
      total = total + c
    end
    count = total
    local seen = {}
    if total <= sample then
      for _, sp in ipairs(spans) do
        if sp[2] > 0 then
          for _, id in ipairs(redis.call('ZRANGE', l.key, sp[1], sp[1] + sp[2] - 1)) do picked[#picked + 1] = id end
        end
      end
    end
    local t = redis.call('TIME')
    math.randomseed(tonumber(t[1]) + tonumber(t[2]))
    for _ = 1, (total <= sample and 0 or sample * 3) do
      if #picked >= math.min(sample, total) then break end
      local pick = math.random(0, total - 1)
      for _, sp in ipairs(spans) do
        if pick < sp[2] then
          local id = redis.call('ZRANGE', l.key, sp[1] + pick, sp[1] + pick)[1]
          if id and not seen[id] then seen[id] = true; picked[#picked + 1] = id end
          break
        end
        pick = pick - sp[2]
      end
    end
  else
    materialize(result)
    count = redis.call('SCARD', result)
    if sample > 0 then picked = redis.call('SRANDMEMBER', result, sample) end
  end
  if dest ~= '' then
    -- An empty result is no key (nothing to rename): the destination is emptied instead.
    if count == 0 then redis.call('DEL', dest)
    elseif string.sub(result, 1, #prefix) == prefix then redis.call('RENAME', result, dest)
    else redis.call('SUNIONSTORE', dest, result) end
  end
  for _, t in ipairs(temps) do redis.call('DEL', t) end
  return { count, picked }
end)
