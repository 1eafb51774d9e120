-- qr_scene_put: saves a QR scene, unless the account already holds the cap of scenes and this one
-- is new; bumps the account's surface version so that every process reloads.
-- KEYS: the scenes hash (Keys.qrScenes), the version counter (Keys.surfaceVersion).
-- ARGV: the scene, its JSON, the cap. Returns 1 (created), 0 (replaced) or -1 (full).
register('qr_scene_put', function(keys, args)
  local exists = redis.call('HEXISTS', keys[1], args[1])
  if exists == 0 and redis.call('HLEN', keys[1]) >= tonumber(args[3]) then return -1 end
  redis.call('HSET', keys[1], args[1], args[2])
  redis.call('INCR', keys[2])
  return 1 - exists
end)

-- qr_scene_delete: removes a scene (its counts stay in the report). KEYS: scenes hash, version.
-- ARGV: the scene. Returns 1 when it existed.
register('qr_scene_delete', function(keys, args)
  local n = redis.call('HDEL', keys[1], args[1])
  if n == 1 then redis.call('INCR', keys[2]) end
  return n
end)

-- surface_doc_put: replaces an account document (reply rules, menu), or deletes it when ARGV[1] is
-- empty, and bumps the version. KEYS: the document (Keys.replyRules, Keys.menu), the version.
-- Returns the new version.
register('surface_doc_put', function(keys, args)
  if args[1] == '' then redis.call('DEL', keys[1]) else redis.call('SET', keys[1], args[1]) end
  return redis.call('INCR', keys[2])
end)

-- mass_quota_take: takes one mass send from the account's quota of the period, or refuses.
-- KEYS: the period's counter (Keys.massSendQuota). ARGV: the limit, ms until the period ends.
-- Returns the sends used with this one, or -1 when the quota is spent.
register('mass_quota_take', function(keys, args)
  local limit = tonumber(args[1])
  if tonumber(redis.call('GET', keys[1]) or '0') >= limit then return -1 end
  local used = redis.call('INCR', keys[1])
  redis.call('PEXPIRE', keys[1], args[2])
  return used
end)

-- mass_quota_return: gives back a send WeChat refused (not a quota refusal). KEYS: the counter.
register('mass_quota_return', function(keys, args)
  if tonumber(redis.call('GET', keys[1]) or '0') > 0 then redis.call('DECR', keys[1]) end
  return 1
end)

-- mass_job_finish: records WeChat's MASSSENDJOBFINISH on the job, once. KEYS: the account's jobs
-- (Keys.massSends). ARGV: msg id, status, total, filtered, sent, errors, at (ms).
-- Returns the job's campaign ('' when none), or false for an unknown or already finished job.
register('mass_job_finish', function(keys, args)
  local raw = redis.call('HGET', keys[1], args[1])
  if not raw then return false end
  local job = cjson.decode(raw)
  if job.finishedAt then return false end
  job.status = args[2]
  job.total, job.filtered, job.sent, job.errors = tonumber(args[3]), tonumber(args[4]), tonumber(args[5]), tonumber(args[6])
  job.finishedAt = tonumber(args[7])
  redis.call('HSET', keys[1], args[1], cjson.encode(job))
  return job.campaign or ''
end)
