-- Journeys (Keys.journey): a definition per version, and the state every change checks first, so two
-- processes or two API calls can never move a journey along two paths.

-- journey_create: KEYS: the journey hash, version 1 (Keys.journeyVersion), the journeys index (not on
-- a cluster, where the caller lists it).
-- ARGV: id, name, definition (JSON), now. Returns 1, or 0 when the id exists.
register('journey_create', function(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 0 end
  redis.call('HSET', keys[1], 'id', args[1], 'name', args[2], 'state', 'draft', 'version', '1', 'createdAt', args[4], 'updatedAt', args[4])
  redis.call('SET', keys[2], args[3])
  if keys[3] then redis.call('ZADD', keys[3], args[4], args[1]) end
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

-- journey_transition: KEYS: the journey hash, the active journeys set (not on a cluster, where the
-- caller keeps it). ARGV: action (activate,
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
  if keys[2] then
    if to == 'active' then redis.call('SADD', keys[2], args[3]) else redis.call('SREM', keys[2], args[3]) end
  end
  return { 'ok', to }
end)

-- Customers in journeys. A customer's place is one hash (Keys.journeyEnrolment); the step it waits
-- for is one member of a due-time index (Keys.journeyTimers). A process claims a due step by pushing
-- its due time a lease ahead and writing its token; only the holder of the claim whose seq still
-- matches may move the customer on, so a step's move happens once however often processes die.

-- Each step passed over counted (s:<step>:skipped:<reason>) in `counts`, from pairs at `from`.
local function bumpSteps(counts, pairs_, from)
  for i = from, #pairs_, 2 do
    local f = 's:' .. pairs_[i] .. ':skipped:' .. pairs_[i + 1]
    counts[f] = (counts[f] or 0) + 1
  end
end

local function bump(counts, field, n) counts[field] = (counts[field] or 0) + (n or 1) end

-- The enrolment of journey_enrol (both forms), counted into `counts`; `a`: journey_enrol's ARGV.
-- The enrolment keeps its step's due time (`dueAt`): a cluster's claim checks it against the timer.
-- Returns the outcome and whether the customer waits for a step.
local function enrolCustomer(counts, enrolment, a)
  local prev = redis.call('HMGET', enrolment, 'state', 'enrolledAt')
  if prev[1] == 'active' then return 'already', false end
  if prev[1] then
    if a[4] == 'never' then return 'no_reentry', false end
    if a[4] == 'after' and tonumber(a[3]) - tonumber(prev[2] or '0') < tonumber(a[5]) then return 'no_reentry', false end
  end
  local now = a[3]
  redis.call('DEL', enrolment)
  local state = a[8] == '' and 'done' or 'active'
  -- The journey and the customer are in the key: not stored again (a million enrolments are memory).
  redis.call('HSET', enrolment, 'version', a[6], 'step', a[8], 'seq', '1', 'state', state, 'late', a[11], 'enrolledAt', now, 'stepAt', now)
  if a[7] ~= '' then redis.call('HSET', enrolment, 'anchor', a[7]) end
  bump(counts, 'enrolled')
  bumpSteps(counts, a, 13)
  if state == 'active' then
    redis.call('HSET', enrolment, 'dueAt', a[10])
    bump(counts, 's:' .. a[9] .. ':entered')
  else
    bump(counts, 'completed')
  end
  return 'enrolled', state == 'active'
end

-- journey_enrol: KEYS: the journey hash, the enrolment, the timers partition, the journey's stats. ARGV: journey id, customer, now, reentry (never | always |
-- after), reentry ms, version, anchor ms ('' = none), first step index ('' = none), its id, due, late
-- (0/1), member, then skipped (step id, reason) pairs.
-- Returns 'enrolled', 'inactive', 'already' (in it now) or 'no_reentry'.
register('journey_enrol', function(keys, args)
  if redis.call('HGET', keys[1], 'state') ~= 'active' then return 'inactive' end
  local acc = newCounters()
  local r, waits = enrolCustomer(countsOf(acc, keys[4]), keys[2], args)
  flushCounters(acc)
  if waits then redis.call('ZADD', keys[3], args[10], args[12]) end
  return r
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

-- The move of journey_advance (both forms), counted into `counts`; `a`: journey_advance's ARGV;
-- `running`: whether the journey is active (read by the caller on a cluster). Returns the answer and
-- what becomes of the timer: { 'rem' }, { 'add', due } or { 'keep', until } (nil when stale).
local function advanceEnrolment(counts, enrolment, a, running)
  local e = redis.call('HMGET', enrolment, 'claim', 'seq', 'state')
  if e[1] ~= a[1] or e[2] ~= a[2] or e[3] ~= 'active' then return { 'stale' }, nil end
  bump(counts, 's:' .. a[5] .. ':' .. a[6])
  bump(counts, 's:' .. a[5] .. ':left')
  bumpSteps(counts, a, 12)
  -- The last message sent: an exit event after it is that send's conversion.
  if a[6] == 'queued' then redis.call('HSET', enrolment, 'lastSent', a[5]) end
  local seq = tostring(tonumber(a[2]) + 1)
  if a[7] == '' then
    redis.call('HDEL', enrolment, 'claim', 'dueAt')
    redis.call('HSET', enrolment, 'state', 'done', 'step', '', 'stepAt', a[4], 'seq', seq)
    bump(counts, 'completed')
    return { 'ok' }, { 'rem' }
  end
  redis.call('HSET', enrolment, 'step', a[7], 'stepAt', a[4], 'late', a[10], 'seq', seq, 'dueAt', a[9])
  bump(counts, 's:' .. a[8] .. ':entered')
  local keep = tonumber(a[11])
  if keep > 0 and tonumber(a[9]) <= tonumber(a[4]) and running() then
    return { 'continue', seq }, { 'keep', tostring(tonumber(a[4]) + keep) }
  end
  redis.call('HDEL', enrolment, 'claim')
  return { 'ok' }, { 'add', a[9] }
end

-- journey_advance: the claimed step is over; the customer moves on. KEYS: the enrolment, the timers
-- partition, the journey's stats, the journey hash. ARGV: token, seq, member, now, the step's id,
-- its outcome counter (completed, queued, skipped:<reason>...), next step index ('' = the journey is
-- over), its id, due, late (0/1), keep (ms: when the next step is due now and the journey runs, the
-- claim is kept this long and the caller runs it at once; 0 = never), then skipped (step id, reason)
-- pairs (from ARGV[12]). Returns { 'ok' }, { 'continue', seq } (the claim is still ours, at seq) or
-- { 'stale' } (another claim, or moved).
register('journey_advance', function(keys, args)
  local acc = newCounters()
  local r, timer = advanceEnrolment(countsOf(acc, keys[3]), keys[1], args, function() return redis.call('HGET', keys[4], 'state') == 'active' end)
  flushCounters(acc)
  if timer and timer[1] == 'rem' then redis.call('ZREM', keys[2], args[3]) end
  if timer and timer[1] ~= 'rem' then redis.call('ZADD', keys[2], timer[2], args[3]) end
  return r
end)

-- The exit of journey_exit (both forms), counted into `counts`. `a`: member, now, the current step's
-- id, the exit event's type. Returns 1 when the customer was in the journey.
local function exitEnrolment(counts, enrolment, a)
  local e = redis.call('HMGET', enrolment, 'state', 'seq', 'lastSent')
  if e[1] ~= 'active' then return 0 end
  redis.call('HSET', enrolment, 'state', 'exited', 'exitedAt', a[2], 'exitedOn', a[4], 'seq', tostring(tonumber(e[2] or '0') + 1))
  redis.call('HDEL', enrolment, 'claim', 'dueAt')
  bump(counts, 'exited')
  if a[3] ~= '' then
    bump(counts, 's:' .. a[3] .. ':exited')
    bump(counts, 's:' .. a[3] .. ':left')
  end
  if e[3] and a[4] ~= 'archived' then
    bump(counts, 's:' .. e[3] .. ':converted')
    bump(counts, 'converted')
  end
  return 1
end

-- journey_exit: an exit event (or an exit step's outcome elsewhere): the customer leaves at once and
-- a timer already due does nothing. KEYS: the enrolment, the timers partition, the journey's stats.
-- ARGV: member, now, the current step's id, the exit event's type (or 'archived': the journey was
-- archived). The last send before an exit event counts a conversion (s:<step>:converted).
-- Returns 1 when the customer was in the journey.
register('journey_exit', function(keys, args)
  local acc = newCounters()
  local r = exitEnrolment(countsOf(acc, keys[3]), keys[1], args)
  flushCounters(acc)
  if r == 1 then redis.call('ZREM', keys[2], args[1]) end
  return r
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
  redis.call('HSET', keys[1], 'woken', args[3], 'dueAt', args[3])
  return 1
end)

-- journey_crm: a journey's crm step: marks the customer a qualified lead (qualifiedAt, once) and/or
-- adds a note to their interactions; a qualified customer is synced again by each CRM adapter,
-- the note among its recent interactions. KEYS: the customer hash, its timeline. ARGV: customer,
-- now, qualify (0/1), note ('' = none), journey id, step id, timeline cap.
-- Returns 'ok' or 'missing'.
local function journeyCrm(keys, args)
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
end

register('journey_crm', journeyCrm)

-- A cluster's journeys (docs/cluster-key-model.md, "Journeys"): the enrolment is a customer key, the
-- timers a partition in another slot, the journey and its stats in the journey's slot. Each function
-- below changes the enrolment in the customer's slot (counts into the slot's counter outbox, the
-- stats key passed as data); JourneyRunStore moves the timer around it and reads the journey's state
-- first. The enrolment keeps its step's due time, so that a timer left at a lease (a process that
-- stopped between the two) is put back to it by the next claim.

-- journey_enrol_slot: KEYS: the slot's counter outbox, the enrolment. ARGV: the journey's stats key,
-- then journey_enrol's ARGV. Returns { outcome, 1 when the customer waits for a step else 0 }.
register('journey_enrol_slot', function(keys, args)
  local acc = newCounters()
  local r, waits = enrolCustomer(countsOf(acc, args[1]), keys[2], { unpack(args, 2) })
  flushCounters(acc, keys[1])
  return { r, waits and 1 or 0 }
end)

-- journey_timer_lease: a due timer pushed a lease ahead, so one process takes it. KEYS: the timers
-- partition. ARGV: member, now, until. Returns 1 when it was due and is now leased.
register('journey_timer_lease', function(keys, args)
  local due = redis.call('ZSCORE', keys[1], args[1])
  if not due or tonumber(due) > tonumber(args[2]) then return 0 end
  redis.call('ZADD', keys[1], args[3], args[1])
  return 1
end)

-- journey_claim_slot: the claim on the enrolment, once its timer is leased. KEYS: the enrolment.
-- ARGV: token, now. Returns { version, step, seq, late, anchor, enrolledAt } (claimed), { 'done' }
-- (not waiting: the caller removes the timer) or { 'early', due } (moved on meanwhile to a step not
-- due yet: the caller sets the timer to it).
register('journey_claim_slot', function(keys, args)
  local e = redis.call('HMGET', keys[1], 'version', 'step', 'seq', 'late', 'anchor', 'enrolledAt', 'state', 'dueAt')
  if e[7] ~= 'active' or not e[2] or e[2] == '' then return { 'done' } end
  if e[8] and tonumber(e[8]) > tonumber(args[2]) then return { 'early', e[8] } end
  redis.call('HSET', keys[1], 'claim', args[1])
  return { e[1], e[2], e[3], e[4] or '0', e[5] or '', e[6] or '' }
end)

-- journey_advance_slot: KEYS: the slot's counter outbox, the enrolment. ARGV: the journey's stats
-- key, whether the journey is active (1/0), then journey_advance's ARGV. Returns journey_advance's
-- answer, then the timer's fate: 'rem', or 'add' / 'keep' and the time ('' when stale).
register('journey_advance_slot', function(keys, args)
  local acc = newCounters()
  local r, timer = advanceEnrolment(countsOf(acc, args[1]), keys[2], { unpack(args, 3) }, function() return args[2] == '1' end)
  flushCounters(acc, keys[1])
  local out = { r[1], r[2] or '' }
  if timer then
    out[3] = timer[1]
    out[4] = timer[2] or ''
  end
  return out
end)

-- journey_exit_slot: KEYS: the slot's counter outbox, the enrolment. ARGV: the journey's stats key,
-- then journey_exit's ARGV. Returns 1 when the customer was in the journey (the caller removes the timer).
register('journey_exit_slot', function(keys, args)
  local acc = newCounters()
  local r = exitEnrolment(countsOf(acc, args[1]), keys[2], { unpack(args, 2) })
  flushCounters(acc, keys[1])
  return r
end)

-- journey_wake_slot: the enrolment side of journey_wake, before the caller moves the timer to now
-- KEYS: the enrolment. ARGV: step index, now. Returns 1 when it still waits at that step (marked woken).
register('journey_wake_slot', function(keys, args)
  local e = redis.call('HMGET', keys[1], 'state', 'step', 'claim')
  if e[1] ~= 'active' or e[2] ~= args[1] or e[3] then return 0 end
  redis.call('HSET', keys[1], 'woken', args[2], 'dueAt', args[2])
  return 1
end)

-- journey_timer_wake: a waiting timer moved to now (journey_wake on a cluster, after the enrolment
-- was marked). KEYS: the timers partition. ARGV: member, now. Returns 1 when moved.
register('journey_timer_wake', function(keys, args)
  local due = redis.call('ZSCORE', keys[1], args[1])
  if not due or tonumber(due) <= tonumber(args[2]) then return 0 end
  redis.call('ZADD', keys[1], args[2], args[1])
  return 1
end)

-- journey_crm_slot: journey_crm on a cluster, sharded (its CRM touch is emitted for the caller to
-- append). Returns { 'ok' | 'missing' }, then what it emitted.
register('journey_crm_slot', sharded(function(keys, args) return { journeyCrm(keys, args) } end))
