-- customer_erase: the atomic step of an erasure (CustomerErasure): a person's customer records,
-- identities and index entries go in one unit, so no reader ever sees half a person. What to remove
-- is decided in Swift (ErasurePlan) from the footprint it read; this only checks that the record is
-- still the one that was read, and applies the plan. On a cluster each record is one such step in its
-- own slot: the live record's first (guarded like this), then each merged stub's, then the identity
-- index keys (identity_release).
-- KEYS: the record's hash, identity set and tag set; then the keys deleted (ndel); then the identity
-- index keys (nidx: deleted only while they still name one of the erased ids); then the sets and
-- sorted sets ids leave (nrem); then the suppression keys written (nsup).
-- ARGV: the guard (live: the record is live with the identities and tags read; stub: a merged stub,
-- or gone already), ndel, nidx, nrem, nsup, nids, ntags, nours; the identities read; the tags read;
-- the erased customer ids; per removal `s|member` or `z|member`; per suppression key its value.
-- Returns { 'ok', deleted } or { 'changed' } (read the footprint again) or { 'gone' }.
register('customer_erase', function(keys, args)
  local guard = args[1]
  args = { unpack(args, 2) }
  local ndel, nidx, nrem, nsup = tonumber(args[1]), tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  local nids, ntags, nours = tonumber(args[5]), tonumber(args[6]), tonumber(args[7])
  local h = redis.call('HMGET', keys[1], 'createdAt', 'mergedInto')
  if guard == 'stub' then
    if h[1] and not h[2] then return { 'changed' } end
  elseif not h[1] or h[2] then
    return { 'gone' }
  end
  local a = 8
  if guard == 'live' then
    if redis.call('SCARD', keys[2]) ~= nids then return { 'changed' } end
    for i = a, a + nids - 1 do
      if redis.call('SISMEMBER', keys[2], args[i]) == 0 then return { 'changed' } end
    end
    a = a + nids
    if redis.call('SCARD', keys[3]) ~= ntags then return { 'changed' } end
    for i = a, a + ntags - 1 do
      if redis.call('SISMEMBER', keys[3], args[i]) == 0 then return { 'changed' } end
    end
    a = a + ntags
  end
  local ours = {}
  for i = a, a + nours - 1 do ours[args[i]] = true end
  a = a + nours
  local deleted = 0
  local k = 4
  for i = k, k + ndel - 1 do deleted = deleted + redis.call('DEL', keys[i]) end
  k = k + ndel
  for i = k, k + nidx - 1 do
    local owner = redis.call('GET', keys[i])
    if owner and ours[owner] then deleted = deleted + redis.call('DEL', keys[i]) end
  end
  k = k + nidx
  for i = 0, nrem - 1 do
    local op, member = string.sub(args[a + i], 1, 1), string.sub(args[a + i], 3)
    if op == 's' then redis.call('SREM', keys[k + i], member) else redis.call('ZREM', keys[k + i], member) end
  end
  k = k + nrem
  a = a + nrem
  for i = 0, nsup - 1 do redis.call('SET', keys[k + i], args[a + i]) end
  return { 'ok', deleted }
end)

-- identity_release: an erased person's identity index key goes, while it still names one of the
-- erased ids (a cluster's erasure step). KEYS: the identity index key. ARGV: the erased ids.
register('identity_release', function(keys, args)
  local owner = redis.call('GET', keys[1])
  for _, id in ipairs(args) do
    if owner == id then return redis.call('DEL', keys[1]) end
  end
  return 0
end)

-- message_erase: one outbound message of an erased person goes. A campaign message that had not
-- finished is counted as skipped (reason erased), as the sender would have, so that the campaign's
-- open count reaches zero and it completes.
-- A message made from a queued campaign reference also takes its stream entry with it, so that the
-- purge does not count the reference again.
-- KEYS: the message hash (Keys.message), its campaign's counters (Keys.campaignStats; '' for none),
-- its stream ('' for none). ARGV: the consumer group.
-- Returns 1 when the message existed.
-- The message deleted, its campaign's counts (when it had not finished) into `acc` (message_erase
-- and its cluster form). Returns whether it existed.
local function eraseMessage(acc, msg, stats)
  local h = redis.call('HMGET', msg, 'state', 'variant', 'channel')
  if h[1] and stats ~= '' and not terminalStates[h[1]] then
    local counts = countsOf(acc, stats)
    for _, change in ipairs({ { 'open', -1 }, { 'skipped', 1 } }) do
      local fields = { change[1] }
      if h[2] then fields[#fields + 1] = 'v:' .. h[2] .. ':' .. change[1] end
      if h[3] then fields[#fields + 1] = 'ch:' .. h[3] .. ':' .. change[1] end
      for _, f in ipairs(fields) do counts[f] = (counts[f] or 0) + change[2] end
    end
    counts['skip:erased'] = (counts['skip:erased'] or 0) + 1
  end
  return redis.call('DEL', msg)
end

register('message_erase', function(keys, args)
  local entry = redis.call('HGET', keys[1], 'entry')
  if entry and keys[3] and keys[3] ~= '' then ackEntry(keys[3], args[1], entry) end
  local acc = newCounters()
  local existed = eraseMessage(acc, keys[1], keys[2])
  flushCounters(acc)
  return existed
end)

-- message_erase_slot (a cluster): message_erase in the message's slot; the erasure acknowledges the
-- stream entry after it and flushes the counts. KEYS: the slot's counter outbox, the message.
-- ARGV: its campaign's counters ('' for none). Returns 1 when the message existed.
register('message_erase_slot', function(keys, args)
  local acc = newCounters()
  local existed = eraseMessage(acc, keys[2], args[1])
  flushCounters(acc, keys[1])
  return existed
end)
