-- Sending on a Redis Cluster (docs/cluster-key-model.md, "Sending"). A message is in its recipient's
-- slot (MessageId): the message, the contact history, the customer's message index and campaign
-- exposures are one slot, so each state change below is one call there. What lives in other slots is
-- done by MessageStore around it, each step safe to repeat: stream entries are acknowledged after the
-- change (a redelivered entry finds the message moved on), appends are once per mark
-- (stream_append_once), and the counts go to the slot's counter outbox, flushed into the campaign's
-- and journey's stats exactly once (counters_take, counters_apply, counters_done).

-- The counter keys of a message as data (on a cluster they are in other slots): stats, sends per
-- second, journey stats, at args[at..at+2] ('' = none).
local function counterNames(args, at)
  return { stats = args[at], sec = args[at + 1], journey = args[at + 2] }
end

-- stream_append_once: an entry appended to a stream once per operation: a step run again (a retry
-- after a cut) appends nothing more. KEYS: the stream, the operation's mark in the stream's slot
-- (Keys.streamAppended). ARGV: the mark's TTL (s), the stream's max length ('' = none), then the
-- entry's field/value pairs. Returns 1 when appended, 0 when it was already.
register('stream_append_once', function(keys, args)
  if not redis.call('SET', keys[2], '1', 'NX', 'EX', args[1]) then return 0 end
  if args[2] ~= '' then
    redis.call('XADD', keys[1], 'MAXLEN', '~', args[2], '*', unpack(args, 3))
  else
    redis.call('XADD', keys[1], '*', unpack(args, 3))
  end
  return 1
end)

-- message_store: a message accepted on a cluster, stored once (after its idempotency key was claimed)
-- and indexed under its customer. KEYS: the message, the customer's message index (optional).
-- ARGV: id, created at, index TTL ms, then the message's field/value pairs.
-- Returns 1 when stored now, 0 when it was already there.
register('message_store', function(keys, args)
  if redis.call('EXISTS', keys[1]) == 1 then return 0 end
  redis.call('HSET', keys[1], unpack(args, 4))
  if keys[2] then
    redis.call('ZADD', keys[2], args[2], args[1])
    redis.call('PEXPIRE', keys[2], args[3])
  end
  return 1
end)

-- message_claim_slot: message_claim_batch for the messages of one slot. The campaign's state and the
-- address's opt-out are read by the caller first (other slots); a paused campaign's message is
-- answered 3 unchanged, and the caller parks it.
-- KEYS, 2 per message: the message, its contact history (the message again when it has none).
-- ARGV: now, owner, cap count, then channel or '*', max, window ms per cap, then per message: its id,
-- history (1/0), the campaign's state ('' = none), the opt-out record ('' = none), the channel of the
-- queue its entry is on ('' = none).
-- Returns per message a code and a value, as message_claim_batch, or 7 and the message's channel: it
-- fell back to that channel, and the caller queues it there (once) and acknowledges this entry.
register('message_claim_slot', function(keys, args)
  local now, owner = tonumber(args[1]), args[2]
  local caps, longest, first = readCaps(args, 3)
  local out = {}
  for m = 0, #keys / 2 - 1 do
    local a = first + 5 * m
    local k = {
      msg = keys[2 * m + 1], history = args[a + 1] == '1' and keys[2 * m + 2] or '',
      read = { campaign = args[a + 2], optOut = args[a + 3], channel = args[a + 4] },
    }
    local r = claimMessage(k, now, owner, '', '', args[a], caps, longest, {})
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
  end
  return out
end)

-- message_complete_slot: message_complete_batch for the messages of one slot; the provider ids are
-- indexed and the entries acknowledged by the caller, the counts go to the outbox.
-- KEYS: the slot's counter outbox, then 2 per message: the message, the customer's campaign exposures
-- (the message again when it has none). ARGV: now, retention ms, then per message: provider id ('' =
-- none), message id, exposures (1/0), its counter keys (3, '' = none). Returns how many.
register('message_complete_slot', function(keys, args)
  local now, keep = args[1], args[2]
  local acc = newCounters()
  local n = (#keys - 1) / 2
  for m = 0, n - 1 do
    local a = 3 + 6 * m
    local exposures = args[a + 2] == '1' and keys[3 + 2 * m] or ''
    completeMessage(acc, keys[2 + 2 * m], counterNames(args, a + 3), exposures, '', args[a], args[a + 1], now, keep)
  end
  flushCounters(acc, keys[1])
  return n
end)

-- message_reschedule_slot: message_reschedule's change of the message; the caller schedules it first
-- and acknowledges the entry after. KEYS: the slot's counter outbox, the message. ARGV: now, due at,
-- last error ('' = keep), deferred (1/0), doubt since ('' = none), its counter keys (3).
register('message_reschedule_slot', function(keys, args)
  local acc = newCounters()
  rescheduleMessage(acc, keys[2], counterNames(args, 6), args[1], args[2], args[3], args[4], args[5])
  flushCounters(acc, keys[1])
  return 1
end)

-- message_finish_slot: message_finish's change of the message; the caller appends the dead letter
-- first (once) and acknowledges the entry after. KEYS: the slot's counter outbox, the message, its
-- contact history (the message again when none is given back). ARGV: now, state, reason, last error,
-- id, channel, retention ms, history (1/0), its counter keys (3).
register('message_finish_slot', function(keys, args)
  local acc = newCounters()
  finishMessage(acc, keys[2], counterNames(args, 9), args[8] == '1' and keys[3] or '', args[1], args[2], args[3], args[4], args[5], args[6], args[7])
  flushCounters(acc, keys[1])
  return 1
end)

-- message_fall_back_slot: message_fall_back's change of the message; the caller then queues it on the
-- next channel (once) and acknowledges the entry. KEYS: the slot's counter outbox, the message, its
-- contact history (the message again when none is given back). ARGV: the campaign's stats key,
-- history (1/0), then message_fall_back's arguments. Returns 1 when moved, 0 when it had ended or moved on.
register('message_fall_back_slot', function(keys, args)
  local acc = newCounters()
  local moved = fallBackMessage(acc, keys[2], args[1], args[2] == '1' and keys[3] or '', { unpack(args, 3) })
  flushCounters(acc, keys[1])
  return moved and 1 or 0
end)

-- message_replay_slot: message_replay's change of the message; the caller checked the letter first,
-- then queues the message (once per letter) and deletes the letter. KEYS: the slot's counter outbox,
-- the message. ARGV: now, its counter keys (3).
register('message_replay_slot', function(keys, args)
  local acc = newCounters()
  replayMessage(acc, keys[2], counterNames(args, 2), args[1])
  flushCounters(acc, keys[1])
  return 1
end)

-- receipt_apply_slot: receipt_apply's change of the message; the caller appends an engagement to the
-- inbound stream. KEYS: the slot's counter outbox, the message. ARGV: outcome (delivered | failed |
-- none), reason, now, its counter keys (3). Returns { 0 } when the message is gone, else { 1, channel,
-- state moved to or '', customer or '', campaign or '' }.
register('receipt_apply_slot', function(keys, args)
  local acc = newCounters()
  local f, moved = applyReceipt(acc, keys[2], counterNames(args, 4), args[1], args[2], args[3])
  if not f[5] then return { 0 } end
  flushCounters(acc, keys[1])
  return { 1, f[3] or '', moved, f[6] or '', f[1] or '' }
end)

-- counters_take: a slot's counter outbox taken for flushing: renamed to its taking key under the
-- slot's next take number (above every earlier one, and not below the time in ms, so a lost sequence
-- key cannot go back), unless a take is there already (a flush that stopped), which is answered again.
-- A slot's takes are applied in order: the next is taken only once the last is done.
-- KEYS: the outbox, its taking key, the slot's take sequence. Returns { take, field, value, ... } or {}.
register('counters_take', function(keys, args)
  if redis.call('EXISTS', keys[2]) == 0 then
    if redis.call('EXISTS', keys[1]) == 0 then return {} end
    local t = redis.call('TIME')
    local take = math.max(tonumber(redis.call('GET', keys[3]) or '0') + 1, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    redis.call('SET', keys[3], string.format('%d', take))
    redis.call('RENAME', keys[1], keys[2])
    redis.call('HSET', keys[2], '\ttake', string.format('%d', take))
  end
  local all = redis.call('HGETALL', keys[2])
  local out = { redis.call('HGET', keys[2], '\ttake') }
  for i = 1, #all, 2 do
    if all[i] ~= '\ttake' then
      out[#out + 1] = all[i]
      out[#out + 1] = all[i + 1]
    end
  end
  return out
end)

-- counters_apply: takes' counts for one counter key, each added once. The key's applied hash (in its
-- slot) keeps, per source slot, the last take added from it; takes of a slot come in order, so one
-- number per slot says what was added (at most 16,384 fields, however many messages were counted).
-- KEYS: the counter key, its applied hash. ARGV: expire s ('' = none), then per take: the source
-- slot's tag, the take, n, and n field, amount pairs. Returns how many takes were added now.
register('counters_apply', function(keys, args)
  local added, i = 0, 2
  while i <= #args do
    local source, take, n = args[i], tonumber(args[i + 1]), tonumber(args[i + 2])
    if tonumber(redis.call('HGET', keys[2], source) or '0') < take then
      redis.call('HSET', keys[2], source, args[i + 1])
      for j = i + 3, i + 2 + 2 * n, 2 do redis.call('HINCRBY', keys[1], args[j], args[j + 1]) end
      added = added + 1
    end
    i = i + 3 + 2 * n
  end
  if added > 0 then
    if args[1] ~= '' then redis.call('EXPIRE', keys[1], args[1]) end
    -- Kept a day past its last take (a take resumed later than that would be added again).
    redis.call('EXPIRE', keys[2], args[1] ~= '' and math.max(tonumber(args[1]), 86400) or 86400)
  end
  return added
end)

-- counters_done: a take applied everywhere, removed. KEYS: the taking key. ARGV: the take id.
register('counters_done', function(keys, args)
  if redis.call('HGET', keys[1], '\ttake') == args[1] then redis.call('DEL', keys[1]) end
  return 1
end)

-- zset_remove_unchanged: members of a sorted set removed only while each still has the score read
-- (a due retry queued again, a journey timer no longer waited on): one moved meanwhile (a message
-- rescheduled, a customer enrolled again) keeps its new entry. KEYS: the sorted set (the retry
-- schedule, a timers partition). ARGV: member, score pairs. Returns how many were removed.
register('zset_remove_unchanged', function(keys, args)
  local n = 0
  for i = 1, #args, 2 do
    if redis.call('ZSCORE', keys[1], args[i]) == args[i + 1] then n = n + redis.call('ZREM', keys[1], args[i]) end
  end
  return n
end)
