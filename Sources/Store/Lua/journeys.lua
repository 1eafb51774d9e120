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
