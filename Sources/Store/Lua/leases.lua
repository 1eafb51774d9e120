-- Leases shared by the processes: the access-token refresh lock and its fenced store
-- (AccessTokenManager), and the follower import job (FollowerSync). Every key is passed in KEYS.

-- token_store_if_holder: KEYS: token hash, lock. ARGV: token, expiresAt, fence. Stores only while the lock holds our fence.
register('token_store_if_holder', function(keys, args)
  if redis.call('GET', keys[2]) ~= args[3] then return 0 end
  redis.call('HSET', keys[1], 'token', args[1], 'expiresAt', args[2], 'stale', '0', 'fence', args[3])
  return 1
end)

-- token_mark_stale: KEYS: token hash. ARGV: the refused token. Marks it stale only if it is still the cached one.
register('token_mark_stale', function(keys, args)
  if redis.call('HGET', keys[1], 'token') ~= args[1] then return 0 end
  redis.call('HSET', keys[1], 'stale', '1')
  return 1
end)

-- token_release: KEYS: lock. ARGV: fence. Deletes the lock only if it is still ours.
register('token_release', function(keys, args)
  if redis.call('GET', keys[1]) == args[1] then return redis.call('DEL', keys[1]) end
  return 0
end)

-- follower_import_take: KEYS: import hash. ARGV: now, stale-before, owner. Starts a run unless one is running with a
-- fresh heartbeat; a finished import starts over, a failed or stale one resumes from `next`.
register('follower_import_take', function(keys, args)
  local st = redis.call('HMGET', keys[1], 'state', 'updatedAt')
  if st[1] == 'running' and tonumber(st[2] or '0') > tonumber(args[2]) then return 0 end
  if st[1] == 'done' or not st[1] then
    redis.call('DEL', keys[1])
    redis.call('HSET', keys[1], 'imported', 0, 'created', 0, 'total', 0, 'next', '', 'startedAt', args[1])
  end
  redis.call('HSET', keys[1], 'state', 'running', 'updatedAt', args[1], 'owner', args[3])
  redis.call('HDEL', keys[1], 'error')
  return 1
end)
