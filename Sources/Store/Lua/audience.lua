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

-- audience_estimate: the same audience shape as audience_count, estimated from a random draw of the
-- smallest positive set instead of counted: `draws` distinct members of it are checked against the
-- other sets (a few milliseconds however large the sets). When the set has no more members than
-- that, every member is checked and the count is exact. The estimate and its margin are worked out
-- by the caller (AudienceEstimate) from what this returns.
-- KEYS: the positive sets, then the negative sets. ARGV: how many KEYS are positive, the sample
-- size, the draws. Returns { members that passed, members checked, size of the set drawn from,
-- sample ids (up to the sample size, of those that passed) }.
register('audience_estimate', function(keys, args)
  local np, sample, draws = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  local smallest, size = 1, math.huge
  for i = 1, np do
    local n = redis.call('SCARD', keys[i])
    if n < size then smallest, size = i, n end
  end
  if size == 0 then return { 0, 0, 0, {} } end
  local candidates
  if size <= draws then candidates = redis.call('SMEMBERS', keys[smallest]) else candidates = redis.call('SRANDMEMBER', keys[smallest], draws) end
  local passed = {}
  for m = 1, #candidates do passed[m] = true end
  for i = 1, #keys do
    if i ~= smallest then
      local want = (i <= np) and 1 or 0
      for c0 = 1, #candidates, 1000 do
        local chunk = { unpack(candidates, c0, math.min(c0 + 999, #candidates)) }
        local answers = redis.call('SMISMEMBER', keys[i], unpack(chunk))
        for m = 1, #chunk do
          if answers[m] ~= want then passed[c0 + m - 1] = false end
        end
      end
    end
  end
  local hits, picked = 0, {}
  for m = 1, #candidates do
    if passed[m] then
      hits = hits + 1
      if #picked < sample then picked[#picked + 1] = candidates[m] end
    end
  end
  return { hits, #candidates, size, picked }
end)
