-- Acknowledges and deletes the stream entry a sender was holding ('' = none).
local function ackEntry(stream, group, entryId)
  if entryId ~= '' then
    redis.call('XACK', stream, group, entryId)
    redis.call('XDEL', stream, entryId)
  end
end

-- session_append: adds an outbound customer-service message to the follower's conversation while its
-- 48 h window is open, so the session reads in both directions. KEYS: the session (Keys.session), its
-- messages (Keys.sessionMessages). ARGV: the entry (JSON), the cap. Returns 1, or 0 when the window closed.
register('session_append', function(keys, args)
  local ttl = redis.call('PTTL', keys[1])
  if ttl <= 0 then return 0 end
  local cap = tonumber(args[2])
  if redis.call('RPUSH', keys[2], args[1]) > cap then redis.call('LTRIM', keys[2], -cap, -1) end
  if redis.call('PTTL', keys[2]) < 0 then redis.call('PEXPIRE', keys[2], ttl) end
  return 1
end)

-- The counter keys of a message's state change, as the Swift side passes them: the campaign's stats,
-- its sends per second, the journey's stats (`MessageStore.counterKeys`).
local function counterKeys(keys, at)
  return { stats = keys[at], sec = keys[at + 1], journey = keys[at + 2] }
end

local function counterFields(msg)
  return redis.call('HMGET', msg, 'campaign', 'variant', 'channel', 'journey')
end

-- The counters a message's state change moves: its campaign's (overall, per variant, per channel; sends
-- per second for the live rate) and its journey step's. `k`: the keys, passed in (Keys.campaignStats,
-- Keys.campaignSendRate, Keys.journeyStats; '' = none). `f`: the message's campaign, variant, channel
-- and journey (`<journey>:<step>`). Called only on a real transition, so counts stay exact. Added
-- into `acc` (a batch's counters), written by flushCounters once per key and field.
-- The counts of one key in a batch's counters (made on first use).
local function countsOf(acc, key)
  local counts = acc.counts[key]
  if not counts then
    counts = {}
    acc.counts[key] = counts
  end
  return counts
end

local function countInto(acc, k, f, metric, n, now)
  local function add(key, field)
    local t = countsOf(acc, key)
    t[field] = (t[field] or 0) + n
  end
  if k.journey ~= '' and f[4] and metric ~= 'open' then
    local step = string.match(f[4], '^[^:]+:(.+)$')
    if step then add(k.journey, 's:' .. step .. ':' .. metric) end
  end
  if not f[1] or k.stats == '' then return end
  add(k.stats, metric)
  if f[2] then add(k.stats, 'v:' .. f[2] .. ':' .. metric) end
  if f[3] then add(k.stats, 'ch:' .. f[3] .. ':' .. metric) end
  if metric == 'sent' and now and k.sec ~= '' then
    add(k.sec, tostring(math.floor(tonumber(now) / 1000)))
    acc.expire[k.sec] = 120
  end
end

local function newCounters() return { counts = {}, expire = {} } end

-- On a cluster (`outbox` given) the counts go to the slot's counter outbox instead (Keys.counterOutbox:
-- field `<key>\t<field>\t<expire s or ''>`), which MessageStore flushes into the counter keys of other
-- slots exactly once (counters_take, counters_apply, counters_done).
local function flushCounters(acc, outbox)
  if outbox then
    for key, fields in pairs(acc.counts) do
      for field, n in pairs(fields) do
        if n ~= 0 then redis.call('HINCRBY', outbox, key .. '\t' .. field .. '\t' .. (acc.expire[key] or ''), n) end
      end
    end
    return
  end
  for key, fields in pairs(acc.counts) do
    for field, n in pairs(fields) do
      if n ~= 0 then redis.call('HINCRBY', key, field, n) end
    end
  end
  for key, seconds in pairs(acc.expire) do redis.call('EXPIRE', key, seconds) end
end

-- One message's state change counted and written at once.
local function countTransition(k, f, metric, n, now)
  local acc = newCounters()
  countInto(acc, k, f, metric, n, now)
  flushCounters(acc)
end

-- message_fall_back: a campaign message its recipient cannot get on its channel (opted out, bad
-- address, consent revoked since planning, a variable missing) moves to the next channel in the
-- campaign's order under the same id, so the ledger (one message per campaign and customer) still
-- allows one delivery at most. The content is replaced, the attempts start again, the tried channel
-- and its reason are kept in `fallbacks`, and the message is queued on the next channel's stream in
-- the same step as the current stream entry is acknowledged: a crash leaves it on one queue or the
-- other, never both. The campaign's counters move the open message from one channel to the other
-- and count the fallback: fellBack (total, per variant and per channel left), fellBackTo:<channel>,
-- fellBack:<reason>. The frequency-cap slot the failed attempt took is given back.
-- KEYS: the message hash, the next channel's stream, the campaign's stats hash, the stream of the
-- entry being processed, then (optional) the contact history whose cap slot is given back.
-- ARGV: channel tried, reason, now, entry id ('' = none), consumer group, message id, next channel,
-- variant, then the next content's field/value pairs.
-- Returns 1 when moved, 0 when the message had already ended or moved on (nothing changed but the ack).
-- The message moved to its next channel (message_fall_back and its cluster form), counted into `acc`;
-- `history` ('' = none) gives back the cap slot. `a`: the arguments; the content pairs start at 9.
-- Returns true when moved, false when the message had ended or moved on.
local function fallBackMessage(acc, msg, stats, history, a)
  local from, reason, now, id, to, variant = a[1], a[2], a[3], a[6], a[7], a[8]
  local h = redis.call('HMGET', msg, 'state', 'channel', 'fallbacks')
  local live = { queued = true, sending = true, retrying = true }
  if not (h[1] and live[h[1]]) or h[2] ~= from then return false end
  redis.call('HDEL', msg, 'template', 'subject', 'text', 'html', 'link', 'variables', 'links', 'account', 'to', 'sendingSince', 'owner',
    'nextAttemptAt', 'doubtSince', 'lastError', 'reason', 'providerId')
  redis.call('HSET', msg, unpack(a, 9))
  local tried = from .. ':' .. reason
  if h[3] then tried = h[3] .. ';' .. tried end
  redis.call('HSET', msg, 'state', 'queued', 'attempts', '0', 'updatedAt', now, 'fallbacks', tried)
  local counts = countsOf(acc, stats)
  local moves = {
    { 'ch:' .. from .. ':open', -1 }, { 'ch:' .. to .. ':open', 1 }, { 'ch:' .. to .. ':queued', 1 },
    { 'fellBack', 1 }, { 'ch:' .. from .. ':fellBack', 1 }, { 'fellBackTo:' .. to, 1 }, { 'fellBack:' .. reason, 1 },
  }
  if variant ~= '' then moves[#moves + 1] = { 'v:' .. variant .. ':fellBack', 1 } end
  for _, c in ipairs(moves) do counts[c[1]] = (counts[c[1]] or 0) + c[2] end
  if history ~= '' then redis.call('ZREM', history, from .. ':' .. id) end
  return true
end

register('message_fall_back', function(keys, args)
  local acc = newCounters()
  local moved = fallBackMessage(acc, keys[1], keys[3], keys[5] or '', args)
  if moved then
    flushCounters(acc)
    redis.call('XADD', keys[2], '*', 'id', args[6])
  end
  ackEntry(keys[4], args[5], args[4])
  return moved and 1 or 0
end)

local terminalStates = { sent = true, delivered = true, failed = true, skipped = true }

-- A campaign message's fate when its campaign is not running: parked while paused (the stream entry
-- acknowledged; resume queues it again), refused when stopped; nil = running or completed, go on.
local function holdForCampaign(campaignKey, parkedKey, stream, group, entryId, msgId)
  local cs = redis.call('HGET', campaignKey, 'state') or 'missing'
  if cs == 'paused' then
    redis.call('SADD', parkedKey, msgId)
    ackEntry(stream, group, entryId)
    return { 3, '' }
  end
  if cs ~= 'running' and cs ~= 'completed' then return { 4, cs } end
  return nil
end

-- One message's ledger claim (see message_claim_batch). `caps`: { {channel or '*', max, window ms}... };
-- `longest`: the longest window. `campaignStates`: the batch's campaign states read so far (a
-- campaign's state is read once per batch: the function runs atomically, so it cannot change meanwhile).
-- On a cluster `k.read` holds the campaign's state and the opt-out record as the caller read them
-- ('' = none): a paused campaign's message is answered parked without a change (the caller parks it).
local function claimMessage(k, now, owner, group, entryId, id, caps, longest, campaignStates)
  local h = redis.call('HMGET', k.msg, 'state', 'sendingSince', 'channel', 'attempts')
  local st = h[1]
  if not st then return { -1, '' } end
  if st == 'sending' then return { 2, h[2] or '0' } end
  if st ~= 'queued' and st ~= 'retrying' then return { 0, '' } end
  if k.read then
    -- Moved to another channel by a fallback whose append to that channel's queue did not happen.
    if k.read.channel ~= '' and h[3] ~= k.read.channel then return { 7, h[3] } end
    local cs = k.read.campaign
    if cs == 'paused' then return { 3, '' } end
    if cs ~= '' and cs ~= 'running' and cs ~= 'completed' then return { 4, cs } end
    if k.read.optOut ~= '' then return { 6, k.read.optOut } end
  elseif k.campaign ~= '' then
    local cs = campaignStates[k.campaign]
    if not cs then
      cs = redis.call('HGET', k.campaign, 'state') or 'missing'
      campaignStates[k.campaign] = cs
    end
    if cs ~= 'running' and cs ~= 'completed' then
      local held = holdForCampaign(k.campaign, k.parked, k.stream, group, entryId, id)
      if held then return held end
    end
  end
  if not k.read and k.optOut ~= '' then
    local o = redis.call('GET', k.optOut)
    if o then return { 6, o } end
  end
  if k.history ~= '' and #caps > 0 then
    local member = h[3] .. ':' .. id
    local wait = 0
    -- One read of the longest window; each cap counts the part inside its own.
    local e = redis.call('ZRANGE', k.history, now - longest, '+inf', 'BYSCORE', 'WITHSCORES')
    for _, cap in ipairs(caps) do
      local ch, max, win = cap[1], cap[2], cap[3]
      local times = {}
      for j = 1, #e, 2 do
        local at = tonumber(e[j + 1])
        if at >= now - win and e[j] ~= member and (ch == '*' or string.sub(e[j], 1, #ch + 1) == ch .. ':') then times[#times + 1] = at end
      end
      if #times >= max then
        -- the send that must leave the window before this one may go
        local free = times[#times - max + 1] + win + 1
        if free > wait then wait = free end
      end
    end
    if wait > 0 then return { 5, tostring(wait) } end
    redis.call('ZADD', k.history, now, member)
    redis.call('ZREMRANGEBYSCORE', k.history, '-inf', now - longest)
    redis.call('PEXPIRE', k.history, longest)
  end
  local n = tonumber(h[4] or '0') + 1
  redis.call('HSET', k.msg, 'state', 'sending', 'attempts', n, 'sendingSince', now, 'owner', owner, 'updatedAt', now)
  return { 1, tostring(n) }
end

-- The frequency caps of a claim's arguments from `at` (cap count, then channel or '*', max, window ms
-- per cap): the caps, the longest window, and where the next argument is.
local function readCaps(args, at)
  local caps, longest = {}, 0
  local capCount = tonumber(args[at])
  for i = 0, capCount - 1 do
    local win = tonumber(args[at + 3 + 3 * i])
    caps[#caps + 1] = { args[at + 1 + 3 * i], tonumber(args[at + 2 + 3 * i]), win }
    if win > longest then longest = win end
  end
  return caps, longest, at + 1 + 3 * capCount
end

-- message_claim_batch: the ledger claims of up to a batch of messages, made before their provider
-- calls, with the send-time rules in the same atomic step: a paused campaign parks the message, a
-- stopped one refuses it, an opt-out recorded on the address refuses it, and the frequency caps are
-- checked and this send recorded in the recipient's contact history.
-- KEYS, 6 per message: the message (Keys.message), its campaign (Keys.campaign), the campaign's parked
-- set (Keys.campaignParked), the stream of the entry being processed, the contact history
-- (Keys.contactHistory), the address's opt-out (Keys.optOut); '' = none.
-- ARGV: now, owner (the sender), consumer group, cap count, then channel or '*', max, window ms per
-- cap, then per message: its id and stream entry id ('' = none).
-- Returns per message a code and a value: 1 claimed (attempt), 0 already ended, -1 missing, 2 another
-- sender's call in doubt (since), 3 parked, 4 campaign stopped (state), 5 capped (free at), 6 opted
-- out (the opt-out record).
register('message_claim_batch', function(keys, args)
  local now, owner, group = tonumber(args[1]), args[2], args[3]
  local caps, longest, first = readCaps(args, 4)
  local out = {}
  local campaignStates = {}
  for m = 0, #keys / 6 - 1 do
    local b = m * 6
    local k = { msg = keys[b + 1], campaign = keys[b + 2], parked = keys[b + 3], stream = keys[b + 4], history = keys[b + 5], optOut = keys[b + 6] }
    local r = claimMessage(k, now, owner, group, args[first + 2 * m + 1], args[first + 2 * m], caps, longest, campaignStates)
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
  end
  return out
end)

-- message_hold: a campaign message whose campaign is not running, parked (paused) or refused
-- (stopped) in one step. KEYS: the campaign, its parked set, the entry's stream ('' = none).
-- ARGV: message id, entry id ('' = none), consumer group. Returns { 3 } parked, { 4, state } stopped,
-- { 0 } running again.
register('message_hold', function(keys, args)
  return holdForCampaign(keys[1], keys[2], keys[3], args[3], args[2], args[1]) or { 0 }
end)

-- message_complete_batch: messages the provider took, marked sent, each with its stream entry
-- acknowledged in the same step. A campaign's message also records the exposure its conversions are
-- attributed by (first send only).
-- KEYS, 7 per message: the message, the entry's stream, the provider id's index
-- (Keys.providerMessage), the customer's campaigns (Keys.customerCampaigns), the campaign's stats
-- (Keys.campaignStats), sends per second (Keys.campaignSendRate), the journey's stats
-- (Keys.journeyStats); '' = none.
-- ARGV: consumer group, now, retention ms, then per message: entry id ('' = none), provider id ('' =
-- none), message id.
-- One message marked sent (message_complete_batch and its cluster form): counted into `acc` when this
-- is its first end; `pid` ('' = none) indexes the provider id; `exposures` ('' = none) records the
-- campaign exposure.
local function completeMessage(acc, msg, k, exposures, pid, providerId, id, now, keep)
  local f = redis.call('HMGET', msg, 'campaign', 'variant', 'channel', 'journey', 'state')
  if f[5] and not terminalStates[f[5]] then
    countInto(acc, k, f, 'sent', 1, now)
    countInto(acc, k, f, 'open', -1)
  end
  if providerId ~= '' then
    redis.call('HSET', msg, 'state', 'sent', 'updatedAt', now, 'sentAt', now, 'providerId', providerId)
    if pid ~= '' then redis.call('SET', pid, id, 'PX', keep) end
  else
    redis.call('HSET', msg, 'state', 'sent', 'updatedAt', now, 'sentAt', now)
  end
  -- The exposure conversions are attributed by: first send only (a resend keeps it).
  if exposures ~= '' and f[1] then redis.call('HSETNX', exposures, f[1], now .. '|' .. (f[2] or 'default')) end
  redis.call('HDEL', msg, 'sendingSince', 'owner', 'nextAttemptAt', 'reason')
  redis.call('PEXPIRE', msg, keep)
end

register('message_complete_batch', function(keys, args)
  local group, now, keep = args[1], args[2], args[3]
  local acc, acks = newCounters(), {}
  for m = 0, #keys / 7 - 1 do
    local b, a = m * 7, 4 + m * 3
    local stream, entryId = keys[b + 2], args[a]
    completeMessage(acc, keys[b + 1], counterKeys(keys, b + 5), keys[b + 4], keys[b + 3], args[a + 1], args[a + 2], now, keep)
    if entryId ~= '' then
      local ids = acks[stream]
      if not ids then
        ids = {}
        acks[stream] = ids
      end
      ids[#ids + 1] = entryId
    end
  end
  -- The entries acknowledged and deleted together, one XACK and one XDEL per stream.
  for stream, ids in pairs(acks) do
    redis.call('XACK', stream, group, unpack(ids))
    redis.call('XDEL', stream, unpack(ids))
  end
  flushCounters(acc)
  return #keys / 7
end)

-- message_accept: a message accepted once per idempotency key and queued.
-- KEYS: the idempotency key, the message, its stream, the customer's message index ('' = none).
-- ARGV: id, idempotency TTL s, created at, index TTL ms, then the message's field/value pairs.
-- Returns { 1, id } when created, { 0, first id } when the key was used before.
register('message_accept', function(keys, args)
  local existing = redis.call('GET', keys[1])
  if existing then return { 0, existing } end
  redis.call('SET', keys[1], args[1], 'EX', args[2])
  redis.call('HSET', keys[2], unpack(args, 5))
  redis.call('XADD', keys[3], '*', 'id', args[1])
  if keys[4] ~= '' then
    redis.call('ZADD', keys[4], args[3], args[1])
    redis.call('PEXPIRE', keys[4], args[4])
  end
  return { 1, args[1] }
end)

-- message_reschedule: a message to try again at a time (a retry, a deferral by a contact rule, a send
-- in doubt to settle), its stream entry acknowledged.
-- KEYS: the message, the entry's stream ('' = none), the retry schedule (Keys.outboundRetries), then the
-- counter keys (campaign stats, sends per second, journey stats; '' = none).
-- ARGV: entry id, group, now, due at, last error ('' = keep), id, deferred (1 counts a deferral),
-- doubt since ('' = none; the earliest is kept).
-- A message to try again (message_reschedule and its cluster form); `acc` gets a deferral's count.

local function rescheduleMessage(acc, msg, k, now, dueAt, lastError, deferred, doubtSince)
  if deferred == '1' then countInto(acc, k, counterFields(msg), 'deferred', 1) end
  redis.call('HSET', msg, 'state', 'retrying', 'updatedAt', now, 'nextAttemptAt', dueAt)
  if lastError ~= '' then redis.call('HSET', msg, 'lastError', lastError) end
  if doubtSince ~= '' then redis.call('HSETNX', msg, 'doubtSince', doubtSince) end
  redis.call('HDEL', msg, 'sendingSince', 'owner')
end

register('message_reschedule', function(keys, args)
  local acc = newCounters()
  rescheduleMessage(acc, keys[1], counterKeys(keys, 4), args[3], args[4], args[5], args[7], args[8])
  flushCounters(acc)
  redis.call('ZADD', keys[3], args[4], args[6])
  ackEntry(keys[2], args[2], args[1])
  return 1
end)

-- message_finish: a message ends failed (also to the dead-letter stream) or skipped, with its reason.
-- KEYS: the message, the entry's stream ('' = none), the dead letters, the counter keys (3), then the
-- contact history whose frequency-cap slot is given back ('' = none).
-- ARGV: entry id, group, now, state, reason, last error, the provider's answer, id, channel, adapter,
-- dead-letter (1/0), retention ms.
-- A message ended failed or skipped (message_finish and its cluster form): counted into `acc` when
-- this is its first end; `history` ('' = none) gives back the frequency-cap slot.
local function finishMessage(acc, msg, k, history, now, state, reason, lastError, id, channel, keep)
  local f = redis.call('HMGET', msg, 'campaign', 'variant', 'channel', 'journey', 'state')
  if f[5] and not terminalStates[f[5]] then
    countInto(acc, k, f, state, 1)
    countInto(acc, k, f, 'open', -1)
    if f[1] and k.stats ~= '' then
      local t = acc.counts[k.stats]
      local field = (state == 'failed' and 'fail:' or 'skip:') .. reason
      t[field] = (t[field] or 0) + 1
    end
  end
  redis.call('HSET', msg, 'state', state, 'reason', reason, 'updatedAt', now)
  if lastError ~= '' then redis.call('HSET', msg, 'lastError', lastError) end
  redis.call('HDEL', msg, 'sendingSince', 'owner', 'nextAttemptAt')
  redis.call('PEXPIRE', msg, keep)
  if history ~= '' then redis.call('ZREM', history, channel .. ':' .. id) end
end

register('message_finish', function(keys, args)
  local acc = newCounters()
  finishMessage(acc, keys[1], counterKeys(keys, 4), keys[7], args[3], args[4], args[5], args[6], args[8], args[9], args[12])
  flushCounters(acc)
  if args[11] == '1' then
    redis.call('XADD', keys[3], 'MAXLEN', '~', '100000', '*', 'id', args[8], 'channel', args[9], 'adapter', args[10],
      'reason', args[5], 'error', args[6], 'answer', args[7], 'at', args[3])
  end
  ackEntry(keys[2], args[2], args[1])
  return 1
end)

-- message_replay: a dead letter's message back on its queue (a deliberate resend); the letter removed.
-- KEYS: the dead letters, the message, its stream, the counter keys (3).
-- ARGV: the letter's entry id, now, the message id. Returns 1, or 0 when the letter was gone.
-- A failed message queued again (message_replay and its cluster form), counted into `acc`.
local function replayMessage(acc, msg, k, now)
  if redis.call('HGET', msg, 'state') == 'failed' then
    local f = counterFields(msg)
    countInto(acc, k, f, 'failed', -1)
    countInto(acc, k, f, 'open', 1)
  end
  redis.call('HSET', msg, 'state', 'queued', 'updatedAt', now, 'reason', 'replayed')
  redis.call('HDEL', msg, 'nextAttemptAt', 'sendingSince', 'owner', 'doubtSince')
  redis.call('PERSIST', msg)
end

register('message_replay', function(keys, args)
  if redis.call('XDEL', keys[1], args[1]) ~= 1 then return 0 end
  local acc = newCounters()
  replayMessage(acc, keys[2], counterKeys(keys, 4), args[2])
  flushCounters(acc)
  redis.call('XADD', keys[3], '*', 'id', args[3])
  return 1
end)

-- message_requeue_due: retries that are due, back on their streams. KEYS: the retry schedule, then per
-- message its hash and its stream ('' when the message is gone). ARGV: the message ids, in the same
-- order. A message still due (in the schedule) and retrying is queued; the schedule entry is removed
-- either way. Returns how many were queued.
register('message_requeue_due', function(keys, args)
  local queued = 0
  for i, id in ipairs(args) do
    local msg, stream = keys[2 * i], keys[2 * i + 1]
    if redis.call('ZREM', keys[1], id) == 1 and stream ~= '' and redis.call('HGET', msg, 'state') == 'retrying' then
      redis.call('XADD', stream, '*', 'id', id)
      queued = queued + 1
    end
  end
  return queued
end)

-- receipt_apply: a provider's delivery receipt on a message (ReceiptStore): sent -> delivered,
-- sent/delivered -> failed (a later bounce), never backwards, counted on its campaign or journey step;
-- an engagement (open, click) becomes an interaction on the inbound stream.
-- KEYS: 1 the message, 2-4 its counter keys (MessageStore.counterKeys order: campaign stats, sends
-- per second, journey stats; '' = none), 5 stream:inbound.
-- ARGV: 1 outcome (delivered | failed | none), 2 reason, 3 now, 4 engagement kind (''), 5 its URL (''),
-- 6 stream max length, 7 the message id.
-- Returns { 0 } when the message is gone, else { 1, id, channel, state moved to or '' }.
-- A receipt's outcome on a message (receipt_apply and its cluster form), counted into `acc`.
-- Returns the message's campaign, variant, channel, journey, state, customer, and the state moved to ('').
local function applyReceipt(acc, key, k, outcome, reason, now)
  local f = redis.call('HMGET', key, 'campaign', 'variant', 'channel', 'journey', 'state', 'customerId')
  local st = f[5]
  if not st then return f, '' end
  if outcome == 'delivered' and st == 'sent' then
    redis.call('HSET', key, 'state', 'delivered', 'deliveredAt', now, 'updatedAt', now)
    countInto(acc, k, f, 'delivered', 1)
    return f, 'delivered'
  elseif outcome == 'failed' and (st == 'sent' or st == 'delivered') then
    redis.call('HSET', key, 'state', 'failed', 'reason', reason, 'updatedAt', now)
    countInto(acc, k, f, 'bounced', 1)
    return f, 'failed'
  end
  return f, ''
end

register('receipt_apply', function(keys, args)
  local now = args[3]
  local acc = newCounters()
  local f, moved = applyReceipt(acc, keys[1], counterKeys(keys, 2), args[1], args[2], now)
  if not f[5] then return { 0 } end
  flushCounters(acc)
  if args[4] ~= '' and f[6] then
    local payload = { message = args[7], channel = f[3] }
    if f[1] then payload.campaign = f[1] end
    if args[5] ~= '' then payload.url = args[5] end
    redis.call('XADD', keys[5], 'MAXLEN', '~', args[6], '*', 'type', (f[3] or 'message') .. '.' .. args[4],
      'customer', f[6], 'payload', cjson.encode(payload), 'at', now, 'source', 'receipt')
  end
  return { 1, args[7], f[3] or '', moved }
end)
