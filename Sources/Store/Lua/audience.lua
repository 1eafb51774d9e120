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
