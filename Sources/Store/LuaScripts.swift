import RedisClient

/// The Lua scripts of the customer model. Each is the shared library plus a body.
enum LuaScripts {
    /// One webhook, atomically: replay guard, retry dedup, customer upsert (and merge by unionid),
    /// consent, tags, timeline, session and the inbound stream. See `CustomerStore.ingest`.
    static let ingest = RedisScript(
        name: "ingest",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local nonceKey, dedupKey, idxKey = KEYS[1], KEYS[2], KEYS[3]
            local now, nonceTTL, dedupTTL, reply, newId = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
            local identity, unionid, consentField, consentValue = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
            local entry, cap = ARGV[10], tonumber(ARGV[11])
            local sessKey, sessMsgsKey, sessMsg, sessTTL, sessCap = ARGV[12], ARGV[13], ARGV[14], ARGV[15], tonumber(ARGV[16])
            local streamMax, itype, account, payload, replyMsg = ARGV[17], ARGV[18], ARGV[19], ARGV[20], ARGV[21]
            local ntags = tonumber(ARGV[22])

            if nonceKey ~= '' then
              local fingerprint = ARGV[23 + ntags]
              local seen = redis.call('GET', nonceKey)
              if seen then
                if seen ~= fingerprint then return { 'replay' } end
                return { 'retry', '', redis.call('GET', dedupKey) or '' }
              end
              redis.call('SET', nonceKey, fingerprint, 'EX', nonceTTL)
            end
            local stored = redis.call('GET', dedupKey)
            if stored then return { 'dup', '', stored } end

            local cid = ''
            local created = 0
            if idxKey ~= '' then
              local live = false
              cid = redis.call('GET', idxKey)
              if cid then cid, live = resolveLive(cid) end
              local fields = {}
              if consentField ~= '' then fields = { consentField, consentValue } end
              if not live then
                cid = newId
                create(cid, now, identity, fields)
                created = 1
              end
              if unionid ~= '' then cid = bind(cid, unionid, now, cap, streamMax) end
              if created == 0 or cid ~= newId then
                redis.call('HSET', ckey(cid), 'lastSeenAt', now, unpack(fields))
              end
              addTags(cid, { unpack(ARGV, 23, 22 + ntags) })
              -- QR source attribution (IngestPlan.SceneCount) and the scene's owner.
              local statsKey, countKind, scene = KEYS[4], ARGV[25 + ntags], ARGV[26 + ntags]
              local sourceField, owner = ARGV[27 + ntags], ARGV[28 + ntags]
              if statsKey ~= '' and countKind ~= '' then
                if countKind == 'unsubscribe' then
                  local from = redis.call('HGET', ckey(cid), sourceField)
                  if from then
                    redis.call('HINCRBY', statsKey, from .. '\31unsubscribes', 1)
                    redis.call('HDEL', ckey(cid), sourceField)
                  end
                elseif countKind == 'subscribe' and scene == '' then
                  redis.call('HDEL', ckey(cid), sourceField)
                else
                  redis.call('HINCRBY', statsKey, scene .. '\31scans', 1)
                  if countKind == 'subscribe' then
                    redis.call('HINCRBY', statsKey, scene .. '\31subscribes', 1)
                    redis.call('HSET', ckey(cid), sourceField, scene)
                  end
                end
              end
              if owner ~= '' then redis.call('HSETNX', ckey(cid), 'owner', owner) end
              pushTimeline(cid, entry, cap)
              reindex(cid)
              if sessKey ~= '' then
                redis.call('SET', sessKey, now .. ' ' .. cid, 'EX', sessTTL)
                local n
                if replyMsg ~= '' then n = redis.call('RPUSH', sessMsgsKey, sessMsg, replyMsg)
                else n = redis.call('RPUSH', sessMsgsKey, sessMsg) end
                if n > sessCap then redis.call('LTRIM', sessMsgsKey, -sessCap, -1) end
                redis.call('EXPIRE', sessMsgsKey, sessTTL)
              end
            end
            redis.call('XADD', 'stream:inbound', 'MAXLEN', '~', streamMax, '*', 'type', itype, 'account', account,
              'customer', cid, 'at', now, 'payload', payload)
            redis.call('SET', dedupKey, reply, 'EX', dedupTTL)
            -- Keys.sessionDedup: the dedup keys of this sender's callbacks, for an erasure.
            local dedupIndex = ARGV[24 + ntags]
            if dedupIndex ~= '' then
              redis.call('SADD', dedupIndex, dedupKey)
              redis.call('EXPIRE', dedupIndex, dedupTTL)
            end
            return { 'ok', cid, reply, created }
            """#)

    /// Binds an identity from the admin API. ARGV: id, identity, now, timeline cap, stream max, entry.
    static let bindIdentity = RedisScript(
        name: "bind_identity",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local id, live = resolveLive(ARGV[1])
            if not live then return { 'notfound' } end
            local win, lose, how = bind(id, ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5])
            if how ~= 'exists' then
              pushTimeline(win, ARGV[6], tonumber(ARGV[4]))
              -- An interaction too: binding a phone or email can score (identity.bound, data.type).
              redis.call('XADD', 'stream:inbound', 'MAXLEN', '~', ARGV[5], '*', 'type', 'identity.bound', 'customer', win,
                'payload', cjson.encode({ type = string.match(ARGV[2], '^(%w+):') }), 'at', ARGV[3])
            end
            reindex(win)
            return { how, win, lose or '' }
            """#)

    /// A follower known from WeChat's user API (import or profile fetch). ARGV: new id, openid identity,
    /// now, consent field, consent value (both only for a new customer), unionid identity or '', timeline
    /// cap, stream max length, then profile field/value pairs. Creates the customer if the openid is
    /// new, stores the profile, binds the unionid (merging where it links two). Returns {id, created}.
    static let upsertFollower = RedisScript(
        name: "upsert_follower",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local now, cap = ARGV[3], tonumber(ARGV[7])
            local id, created = nil, 0
            local owner = redis.call('GET', 'idx:' .. ARGV[2])
            if owner then
              local live
              id, live = resolveLive(owner)
              if not live then owner = nil end
            end
            if not owner then
              id = ARGV[1]
              create(id, now, ARGV[2], { ARGV[4], ARGV[5] })
              created = 1
            end
            if #ARGV > 8 then redis.call('HSET', ckey(id), unpack(ARGV, 9)) end
            if ARGV[6] ~= '' then id = bind(id, ARGV[6], now, cap, ARGV[8]) end
            reindex(id)
            return { id, created }
            """#)

    /// Adds (ARGV[1] = 'add') or removes ('remove') tag ARGV[2] on customers ARGV[3..]. Returns the
    /// number changed and the ids that are not customers.
    static let tagCustomers = RedisScript(
        name: "tag_customers",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local op, tag = ARGV[1], ARGV[2]
            local changed, unknown = 0, {}
            if op == 'add' then redis.call('SADD', 'tags', tag) end
            for i = 3, #ARGV do
              local id, live = resolveLive(ARGV[i])
              if live then
                local n
                if op == 'add' then n = addTags(id, { tag }) else n = removeTags(id, { tag }) end
                changed = changed + n
                if n == 1 then crmTouch(id, 'tags') end
              else
                unknown[#unknown + 1] = ARGV[i]
              end
            end
            return { changed, unknown }
            """#)

    /// Records a channel consent state (ARGV[2] field, ARGV[3] value) on customer ARGV[1] and updates
    /// its field indexes. Returns 1, or 0 when the customer does not exist.
    static let setConsent = RedisScript(
        name: "set_consent",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local id, live = resolveLive(ARGV[1])
            if not live then return 0 end
            redis.call('HSET', ckey(id), ARGV[2], ARGV[3])
            reindex(id)
            return 1
            """#)

    /// Recomputes the field indexes of customers ARGV[1..] (after an upgrade, or a change made outside
    /// these scripts). Returns how many.
    static let reindexCustomers = RedisScript(
        name: "reindex_customers",
        source: LuaCustomerLibrary.source + "\n" + #"""
            for i = 1, #ARGV do reindex(ARGV[i]) end
            return #ARGV
            """#)
}
