-- Customer imports (CustomerImportRow.json plus the id a new customer gets):
-- { line, { identity, ... }, { tag, ... }, { field, value, ... }, { channel, state, ... }, newId }.
-- A row joins the live customer holding its first known identity, else creates one; every identity
-- is then bound (merging customers it links), profile fields set, consent recorded with the source
-- (a timeline entry when the state changes), tags added, indexes rebuilt.
-- Returns created (0/1) and the number of merges. `schema`: the attribute schema, read once per call.
local function importRow(row, now, cap, streamMax, source, schema)
  local idents, tags, profile, consent, newId = row[2], row[3], row[4], row[5], row[6]
  -- Who holds each identity now (live owners only), read once.
  local owners = {}
  local id = nil
  for i, ident in ipairs(idents) do
    local owner = redis.call('GET', 'idx:' .. ident)
    if owner then
      local live
      owner, live = resolveLive(owner)
      if live then
        owners[i] = owner
        id = id or owner
      end
    end
  end
  local created = 0
  if not id then
    id = newId
    create(id, now, idents[1], {})
    owners[1] = id
    created = 1
  end
  -- Bind the identities the customer does not hold yet (merging another holder into it).
  local merges = 0
  for i, ident in ipairs(idents) do
    if owners[i] ~= id then
      local how, _
      id, _, how = bind(id, ident, now, cap, streamMax)
      if how == 'merged' then merges = merges + 1 end
    end
  end
  if #profile > 0 then redis.call('HSET', ckey(id), unpack(profile)) end
  for i = 1, #consent, 2 do
    local channel, state = consent[i], consent[i + 1]
    if consentState(redis.call('HGET', ckey(id), 'consent.' .. channel)) ~= state then
      redis.call('HSET', ckey(id), 'consent.' .. channel, state .. '|' .. now, 'consentSource.' .. channel, source)
      pushTimeline(id, cjson.encode({ at = tonumber(now), type = 'consent.changed',
        data = { channel = channel, state = state, source = source } }), cap)
    end
  end
  addTags(id, tags)
  reindex(id, schema)
  return created, merges
end

local function importRows(rows, now, cap, streamMax, source)
  local schema = redis.call('HGETALL', 'schema:attributes')
  local created, merged = 0, 0
  for _, row in ipairs(rows) do
    local c, m = importRow(row, now, cap, streamMax, source, schema)
    created = created + c
    merged = merged + m
  end
  return created, #rows - created, merged
end

-- customers_import_chunk: applies chunk `index` of an import job once: only when the job's
-- checkpoint (chunksApplied) is at it; the counters, the checkpoint and the chunk's removal happen
-- in the same step, so a crash before it leaves the chunk to apply and one after cannot repeat it.
-- KEYS: the job hash (Keys.customerImport), the chunk (Keys.customerImportChunk).
-- ARGV: index, now, timeline cap, stream max, consent source.
-- Returns { 'ok', created, updated, merged }, { 'skip', chunksApplied } or { 'missing' }.
register('customers_import_chunk', function(keys, args)
  local index = tonumber(args[1])
  local applied = tonumber(redis.call('HGET', keys[1], 'chunksApplied') or '0')
  if applied ~= index then return { 'skip', applied } end
  local data = redis.call('GET', keys[2])
  if not data then return { 'missing' } end
  local created, updated, merged = importRows(cjson.decode(data), args[2], tonumber(args[3]), args[4], args[5])
  redis.call('HINCRBY', keys[1], 'created', created)
  redis.call('HINCRBY', keys[1], 'updated', updated)
  redis.call('HINCRBY', keys[1], 'merged', merged)
  redis.call('HSET', keys[1], 'chunksApplied', index + 1, 'updatedAt', args[2])
  redis.call('DEL', keys[2])
  return { 'ok', created, updated, merged }
end)

-- customers_import_rows: rows given directly (CustomerStore.importBatch: tests, benchmarks).
-- ARGV: now, timeline cap, stream max, consent source, rows (JSON array). Returns created, updated, merged.
register('customers_import_rows', function(keys, args)
  local created, updated, merged = importRows(cjson.decode(args[5]), args[1], tonumber(args[2]), args[3], args[4])
  return { created, updated, merged }
end)
