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
register('message_fall_back', function(keys, args)
  local from, reason, now, entryId, group, id, to, variant = args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8]
  local function ack()
    if entryId ~= '' then
      redis.call('XACK', keys[4], group, entryId)
      redis.call('XDEL', keys[4], entryId)
    end
  end
  local h = redis.call('HMGET', keys[1], 'state', 'channel', 'fallbacks')
  local live = { queued = true, sending = true, retrying = true }
  if not (h[1] and live[h[1]]) or h[2] ~= from then
    ack()
    return 0
  end
  redis.call('HDEL', keys[1], 'template', 'subject', 'text', 'html', 'link', 'variables', 'links', 'account', 'to', 'sendingSince', 'owner',
    'nextAttemptAt', 'doubtSince', 'lastError', 'reason', 'providerId')
  redis.call('HSET', keys[1], unpack(args, 9))
  local tried = from .. ':' .. reason
  if h[3] then tried = h[3] .. ';' .. tried end
  redis.call('HSET', keys[1], 'state', 'queued', 'attempts', '0', 'updatedAt', now, 'fallbacks', tried)
  local counts = {
    { 'ch:' .. from .. ':open', -1 }, { 'ch:' .. to .. ':open', 1 }, { 'ch:' .. to .. ':queued', 1 },
    { 'fellBack', 1 }, { 'ch:' .. from .. ':fellBack', 1 }, { 'fellBackTo:' .. to, 1 }, { 'fellBack:' .. reason, 1 },
  }
  if variant ~= '' then counts[#counts + 1] = { 'v:' .. variant .. ':fellBack', 1 } end
  for _, c in ipairs(counts) do redis.call('HINCRBY', keys[3], c[1], c[2]) end
  redis.call('XADD', keys[2], '*', 'id', id)
  if keys[5] then redis.call('ZREM', keys[5], from .. ':' .. id) end
  ack()
  return 1
end)

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
