-- WeCom group sends of a campaign (WeComGroupStore): a task per owner is claimed before WeCom is
-- called, closed once (created or refused for good), and its recipients' results are counted once
-- each into the campaign's counters as they turn final.

-- wecom_task_claim: takes a task before WeCom is called. KEYS: the claims (Keys.campaignWeComClaims).
-- ARGV: task id, now (ms), lease (ms), process. Returns { 'claimed' }, { 'busy' } (another process
-- holds it), { 'done' }, or { 'indoubt', since } when a claim ran out without closing the task: the
-- process that held it may have created it on WeCom before it died.
register('wecom_task_claim', function(keys, args)
  local held = redis.call('HGET', keys[1], args[1])
  if held == 'done' then return { 'done' } end
  local mine = args[2] .. '|' .. args[4]
  if not held then
    redis.call('HSET', keys[1], args[1], mine)
    return { 'claimed' }
  end
  local since = tonumber(string.match(held, '^(%d+)|')) or 0
  if tonumber(args[2]) - since < tonumber(args[3]) then return { 'busy' } end
  redis.call('HSET', keys[1], args[1], mine)
  return { 'indoubt', tostring(since) }
end)

-- wecom_task_release: gives a claim back after WeCom answered "try later" (nothing was created).
-- KEYS: the claims. ARGV: task id, process. Returns 1 when this process held it.
register('wecom_task_release', function(keys, args)
  local held = redis.call('HGET', keys[1], args[1])
  if not held or string.match(held, '|(.*)$') ~= args[2] then return 0 end
  redis.call('HDEL', keys[1], args[1])
  return 1
end)

-- wecom_task_close: records a task created on WeCom (or refused for good) once, and moves its
-- recipients out of `open`. KEYS: claims, tasks (Keys.campaignWeComTasks), the campaign's counters,
-- the recipients' results (Keys.campaignWeComResults), the polls (Keys.wecomResultPolls; not on a
-- cluster, where the caller schedules the poll).
-- ARGV: task id, process, task JSON, variant, recipients, failure reason ('' = created), poll member,
-- poll at ('' = none), then the external ids WeCom refused at creation (fail_list).
-- Returns 1, or 0 when the claim was lost (another process took the task over).
register('wecom_task_close', function(keys, args)
  local held = redis.call('HGET', keys[1], args[1])
  if not held or string.match(held, '|(.*)$') ~= args[2] then return 0 end
  redis.call('HSET', keys[1], args[1], 'done')
  redis.call('HSET', keys[2], args[1], args[3])
  local variant, n, reason = args[4], tonumber(args[5]), args[6]
  local counts = {}
  campaignCount(counts, 'open', variant, 'wecom', -n)
  if reason ~= '' then
    campaignCount(counts, 'failed', variant, 'wecom', n)
    counts['fail:' .. reason] = (counts['fail:' .. reason] or 0) + n
  else
    for i = 9, #args do
      if redis.call('HSETNX', keys[4], args[i], 'f') == 1 then
        campaignCount(counts, 'failed', variant, 'wecom')
        counts['fail:wecom_not_contact'] = (counts['fail:wecom_not_contact'] or 0) + 1
      end
    end
  end
  flushCounts(keys[3], counts)
  if args[8] ~= '' and keys[5] then redis.call('ZADD', keys[5], args[8], args[7]) end
  return 1
end)

-- wecom_task_results: a results poll. Each recipient counts once, when it turns final: 1 sent,
-- 2 failed (not a contact of the member), 3 skipped (already received another group message).
-- KEYS: tasks, the campaign's counters, the recipients' results, the polls (not on a cluster, where
-- the caller sets the next poll). ARGV: task id, task JSON,
-- variant, poll member, next poll at ('' = polling ends), then pairs of external id and status.
-- Returns how many recipients turned final.
register('wecom_task_results', function(keys, args)
  redis.call('HSET', keys[1], args[1], args[2])
  local variant, counts, turned = args[3], {}, 0
  for i = 6, #args - 1, 2 do
    local ext, status = args[i], args[i + 1]
    local old = redis.call('HGET', keys[3], ext)
    if not old or old == '0' then
      if status == '1' then
        campaignCount(counts, 'sent', variant, 'wecom')
      elseif status == '2' then
        campaignCount(counts, 'failed', variant, 'wecom')
        counts['fail:wecom_not_friend'] = (counts['fail:wecom_not_friend'] or 0) + 1
      elseif status == '3' then
        campaignCount(counts, 'skipped', variant, 'wecom')
        counts['skip:wecom_already_received'] = (counts['skip:wecom_already_received'] or 0) + 1
      end
      if status ~= '0' then turned = turned + 1 end
      if status ~= '0' or not old then redis.call('HSET', keys[3], ext, status) end
    end
  end
  flushCounts(keys[2], counts)
  if keys[4] then
    if args[5] == '' then redis.call('ZREM', keys[4], args[4]) else redis.call('ZADD', keys[4], args[5], args[4]) end
  end
  return turned
end)

-- wecom_polls_take: the polls due now, each put off by `retryMs` so that one process polls it (the
-- poll itself sets the next time). KEYS: the polls. ARGV: now, limit, retry (ms).
register('wecom_polls_take', function(keys, args)
  local due = redis.call('ZRANGEBYSCORE', keys[1], '-inf', args[1], 'LIMIT', 0, tonumber(args[2]))
  local later = tonumber(args[1]) + tonumber(args[3])
  for _, m in ipairs(due) do redis.call('ZADD', keys[1], later, m) end
  return due
end)
