-- Journeys (Keys.journey): a definition per version, and the state every change checks first, so two
-- processes or two API calls can never move a journey along two paths.

-- journey_create: KEYS: the journey hash, version 1 (Keys.journeyVersion), the journeys index.
-- ARGV: id, name, definition (JSON), now. Returns 1, or 0 when the id exists.
register('journey_create', function(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 0 end
  redis.call('HSET', keys[1], 'id', args[1], 'name', args[2], 'state', 'draft', 'version', '1', 'createdAt', args[4], 'updatedAt', args[4])
  redis.call('SET', keys[2], args[3])
  redis.call('ZADD', keys[3], args[4], args[1])
  return 1
end)

-- journey_edit: a new version; customers already enrolled finish on theirs.
-- KEYS: the journey hash, the new version's key. ARGV: the version the edit was made on, name,
-- definition (JSON), now. Returns { 'ok', version }, { 'conflict', current version } (edited
-- meanwhile), { 'illegal', state } (archived) or { 'missing' }.
register('journey_edit', function(keys, args)
  local h = redis.call('HMGET', keys[1], 'state', 'version')
  if not h[1] then return { 'missing' } end
  if h[1] == 'archived' then return { 'illegal', h[1] } end
  if h[2] ~= args[1] then return { 'conflict', h[2] } end
  local v = tostring(tonumber(h[2]) + 1)
  redis.call('SET', keys[2], args[3])
  redis.call('HSET', keys[1], 'version', v, 'name', args[2], 'updatedAt', args[4])
  return { 'ok', v }
end)

-- journey_transition: KEYS: the journey hash, the active journeys set. ARGV: action (activate,
-- pause, resume, archive), now, id. Returns { 'ok', state }, { 'illegal', state } or { 'missing' }.
register('journey_transition', function(keys, args)
  local st = redis.call('HGET', keys[1], 'state')
  if not st then return { 'missing' } end
  local moves = {
    activate = { draft = 'active' },
    pause = { active = 'paused' },
    resume = { paused = 'active' },
    archive = { draft = 'archived', active = 'archived', paused = 'archived' },
  }
  local to = (moves[args[1]] or {})[st]
  if not to then return { 'illegal', st } end
  redis.call('HSET', keys[1], 'state', to, 'updatedAt', args[2])
  if to == 'active' then redis.call('HSETNX', keys[1], 'activatedAt', args[2]) end
  if to == 'active' then redis.call('SADD', keys[2], args[3]) else redis.call('SREM', keys[2], args[3]) end
  return { 'ok', to }
end)

-- Customers in journeys. A customer's place is one hash (Keys.journeyEnrolment); the step it waits
-- for is one member of a due-time index (Keys.journeyTimers). A process claims a due step by pushing
-- its due time a lease ahead and writing its token; only the holder of the claim whose seq still
-- matches may move the customer on, so a step's move happens once however often processes die.

local function bumpSteps(stats, pairs_, from)
  for i = from, #pairs_, 2 do redis.call('HINCRBY', stats, 's:' .. pairs_[i] .. ':skipped:' .. pairs_[i + 1], 1) end
end

-- journey_enrol: KEYS: the journey hash, the enrolment, the timers partition, the journey's stats. ARGV: journey id, customer, now, reentry (never | always |
-- after), reentry ms, version, anchor ms ('' = none), first step index ('' = none), its id, due, late
-- (0/1), member, then skipped (step id, reason) pairs.
-- Returns 'enrolled', 'inactive', 'already' (in it now) or 'no_reentry'.
register('journey_enrol', function(keys, args)
  if redis.call('HGET', keys[1], 'state') ~= 'active' then return 'inactive' end
  local prev = redis.call('HMGET', keys[2], 'state', 'enrolledAt')
  if prev[1] == 'active' then return 'already' end
  if prev[1] then
    if args[4] == 'never' then return 'no_reentry' end
    if args[4] == 'after' and tonumber(args[3]) - tonumber(prev[2] or '0') < tonumber(args[5]) then return 'no_reentry' end
  end
  local now = args[3]
  redis.call('DEL', keys[2])
  local state = args[8] == '' and 'done' or 'active'
  -- The journey and the customer are in the key: not stored again (a million enrolments are memory).
  redis.call('HSET', keys[2], 'version', args[6], 'step', args[8], 'seq', '1', 'state', state, 'late', args[11], 'enrolledAt', now, 'stepAt', now)
  if args[7] ~= '' then redis.call('HSET', keys[2], 'anchor', args[7]) end
  redis.call('HINCRBY', keys[4], 'enrolled', 1)
  bumpSteps(keys[4], args, 13)
  if state == 'active' then
    redis.call('HINCRBY', keys[4], 's:' .. args[9] .. ':entered', 1)
    redis.call('ZADD', keys[3], args[10], args[12])
  else
    redis.call('HINCRBY', keys[4], 'completed', 1)
  end
  return 'enrolled'
end)

-- journey_claim: KEYS: the timers partition, the enrolment, the journey hash. ARGV: member, now,
-- lease ms, token, recheck ms. Returns { version, step, seq, late, anchor, enrolledAt } when the
-- step is due and now ours; { 'held' } when the journey is paused (the step is looked at again
-- recheck ms later); { 'gone' } when it is archived or gone; {} when not due.
register('journey_claim', function(keys, args)
  local due = redis.call('ZSCORE', keys[1], args[1])
  if not due or tonumber(due) > tonumber(args[2]) then return {} end
  local st = redis.call('HGET', keys[3], 'state')
  if st == 'paused' or st == 'draft' then
    redis.call('ZADD', keys[1], tonumber(args[2]) + tonumber(args[5]), args[1])
    return { 'held' }
  end
  if st ~= 'active' then return { 'gone' } end
  local e = redis.call('HMGET', keys[2], 'version', 'step', 'seq', 'late', 'anchor', 'enrolledAt', 'state')
  if e[7] ~= 'active' or not e[2] or e[2] == '' then
    redis.call('ZREM', keys[1], args[1])
    return {}
  end
  redis.call('ZADD', keys[1], tonumber(args[2]) + tonumber(args[3]), args[1])
  redis.call('HSET', keys[2], 'claim', args[4])
  return { e[1], e[2], e[3], e[4] or '0', e[5] or '', e[6] or '' }
end)

-- journey_advance: the claimed step is over; the customer moves on. KEYS: the enrolment, the timers
-- partition, the journey's stats, the journey hash. ARGV: token, seq, member, now, the step's id,
-- its outcome counter (completed, queued, skipped:<reason>...), next step index ('' = the journey is
-- over), its id, due, late (0/1), keep (ms: when the next step is due now and the journey runs, the
-- claim is kept this long and the caller runs it at once; 0 = never), then skipped (step id, reason)
-- pairs (from ARGV[12]). Returns { 'ok' }, { 'continue', seq } (the claim is still ours, at seq) or
-- { 'stale' } (another claim, or moved).
register('journey_advance', function(keys, args)
  local e = redis.call('HMGET', keys[1], 'claim', 'seq', 'state')
  if e[1] ~= args[1] or e[2] ~= args[2] or e[3] ~= 'active' then return { 'stale' } end
  redis.call('HINCRBY', keys[3], 's:' .. args[5] .. ':' .. args[6], 1)
  redis.call('HINCRBY', keys[3], 's:' .. args[5] .. ':left', 1)
  bumpSteps(keys[3], args, 12)
  -- The last message sent: an exit event after it is that send's conversion.
  if args[6] == 'queued' then redis.call('HSET', keys[1], 'lastSent', args[5]) end
  local seq = tostring(tonumber(args[2]) + 1)
  if args[7] == '' then
    redis.call('HDEL', keys[1], 'claim')
    redis.call('HSET', keys[1], 'state', 'done', 'step', '', 'stepAt', args[4], 'seq', seq)
    redis.call('ZREM', keys[2], args[3])
    redis.call('HINCRBY', keys[3], 'completed', 1)
    return { 'ok' }
  end
  redis.call('HSET', keys[1], 'step', args[7], 'stepAt', args[4], 'late', args[10], 'seq', seq)
  redis.call('HINCRBY', keys[3], 's:' .. args[8] .. ':entered', 1)
  local keep = tonumber(args[11])
  if keep > 0 and tonumber(args[9]) <= tonumber(args[4]) and redis.call('HGET', keys[4], 'state') == 'active' then
    redis.call('ZADD', keys[2], tonumber(args[4]) + keep, args[3])
    return { 'continue', seq }
  end
  redis.call('HDEL', keys[1], 'claim')
  redis.call('ZADD', keys[2], args[9], args[3])
  return { 'ok' }
end)

-- journey_exit: an exit event (or an exit step's outcome elsewhere): the customer leaves at once and
-- a timer already due does nothing. KEYS: the enrolment, the timers partition, the journey's stats.
-- ARGV: member, now, the current step's id, the exit event's type (or 'archived': the journey was
-- archived). The last send before an exit event counts a conversion (s:<step>:converted).
-- Returns 1 when the customer was in the journey.
register('journey_exit', function(keys, args)
  local e = redis.call('HMGET', keys[1], 'state', 'seq', 'lastSent')
  if e[1] ~= 'active' then return 0 end
  redis.call('HSET', keys[1], 'state', 'exited', 'exitedAt', args[2], 'exitedOn', args[4], 'seq', tostring(tonumber(e[2] or '0') + 1))
  redis.call('HDEL', keys[1], 'claim')
  redis.call('ZREM', keys[2], args[1])
  redis.call('HINCRBY', keys[3], 'exited', 1)
  if args[3] ~= '' then
    redis.call('HINCRBY', keys[3], 's:' .. args[3] .. ':exited', 1)
    redis.call('HINCRBY', keys[3], 's:' .. args[3] .. ':left', 1)
  end
  if e[3] and args[4] ~= 'archived' then
    redis.call('HINCRBY', keys[3], 's:' .. e[3] .. ':converted', 1)
    redis.call('HINCRBY', keys[3], 'converted', 1)
  end
  return 1
end)

-- journey_wake: an event a wait listens for (orEvent) ends the wait now, if the customer still waits
-- at that step. KEYS: the enrolment, the timers partition. ARGV: member, step index, now.
-- Returns 1 when woken.
register('journey_wake', function(keys, args)
  local e = redis.call('HMGET', keys[1], 'state', 'step', 'claim')
  if e[1] ~= 'active' or e[2] ~= args[2] or e[3] then return 0 end
  local due = redis.call('ZSCORE', keys[2], args[1])
  if not due or tonumber(due) <= tonumber(args[3]) then return 0 end
  redis.call('ZADD', keys[2], args[3], args[1])
  redis.call('HSET', keys[1], 'woken', args[3])
  return 1
end)

-- journey_crm: a journey's crm step: marks the customer a qualified lead (qualifiedAt, once) and/or
-- adds a note to their interactions; a qualified customer is synced again by each CRM adapter,
-- the note among its recent interactions. KEYS: the customer hash, its timeline. ARGV: customer,
-- now, qualify (0/1), note ('' = none), journey id, step id, timeline cap.
-- Returns 'ok' or 'missing'.
register('journey_crm', function(keys, args)
  local id, now, cap = args[1], tonumber(args[2]), tonumber(args[7])
  if redis.call('EXISTS', keys[1]) == 0 or redis.call('HEXISTS', keys[1], 'mergedInto') == 1 then return 'missing' end
  if args[3] == '1' and redis.call('HSETNX', keys[1], 'qualifiedAt', args[2]) == 1 then
    pushTimeline(id, cjson.encode({ at = now, type = 'lead.qualified', data = { journey = args[5], step = args[6] } }), cap)
    reindex(id)
  end
  if args[4] ~= '' then
    pushTimeline(id, cjson.encode({ at = now, type = 'journey.note', data = { journey = args[5], step = args[6], note = args[4] } }), cap)
  end
  crmTouch(id, 'journey')
  return 'ok'
end)
