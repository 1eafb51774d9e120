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
