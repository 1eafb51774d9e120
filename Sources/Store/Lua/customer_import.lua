-- Customer imports (CustomerImportRow.json plus the id a new customer gets):
-- { line, { identity, ... }, { tag, ... }, { field, value, ... }, { channel, state, ... }, newId }.
-- A row joins the live customer holding its first known identity, else creates one; every identity
-- is then bound (merging customers it links), profile fields set, consent recorded with the source
-- (a timeline entry when the state changes), tags added, indexes rebuilt.
-- Returns created (0/1) and the number of merges. `schema`: the attribute schema, read once per call.
-- What a row sets on its customer once the customer is known: profile fields, consent with its
-- source (a timeline entry when the state changes), tags, then the reindex. Shared by importRow
-- (one call on a single Redis) and import_apply_rows (a cluster's step, per shard).
local function importApply(id, tags, profile, consent, now, cap, source, schema)
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
end

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
  importApply(id, tags, profile, consent, now, cap, source, schema)
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

-- import_apply_rows (sharded): rows of an import on a cluster whose customers live in one shard; the
-- caller found each row's customer and claimed the identity index keys it adds
-- (CustomerStore.importRowsInSteps). Safe to run again: a customer is created only when missing.
-- KEYS: the first row's customer hash. ARGV: now, timeline cap, consent source, then the rows as JSON:
-- [ [ id, [ identities to add ], [ tags ], [ field, value, ... ], [ channel, state, ... ] ], ... ].
-- Returns { created, moved: row index (from 0), survivor, ... }, then what it emitted.
register('import_apply_rows', sharded(function(keys, args)
  local now, cap, source = args[1], tonumber(args[2]), args[3]
  local created, moved = 0, {}
  for i, row in ipairs(cjson.decode(args[4])) do
    local id, live, survivor = hereOrMoved(row[1])
    if survivor then
      moved[#moved + 1] = tostring(i - 1)
      moved[#moved + 1] = survivor
    else
      if not live then
        createRecord(id, now, row[2][1], {})
        created = created + 1
      end
      for _, ident in ipairs(row[2]) do redis.call('SADD', idskey(id), ident) end
      importApply(id, row[3], row[4], row[5], now, cap, source, nil)
    end
  end
  return { created, moved }
end))

-- import_chunk_done: a chunk a cluster applied as steps is counted and the checkpoint moved, once:
-- only while the job's checkpoint is at it. KEYS: the job hash, the chunk. ARGV: index, now, created,
-- updated, merged. Returns 1, or 0 when the checkpoint had moved on.
register('import_chunk_done', function(keys, args)
  if tonumber(redis.call('HGET', keys[1], 'chunksApplied') or '0') ~= tonumber(args[1]) then return 0 end
  redis.call('HINCRBY', keys[1], 'created', args[3])
  redis.call('HINCRBY', keys[1], 'updated', args[4])
  redis.call('HINCRBY', keys[1], 'merged', args[5])
  redis.call('HSET', keys[1], 'chunksApplied', tonumber(args[1]) + 1, 'updatedAt', args[2])
  redis.call('DEL', keys[2])
  return 1
end)
