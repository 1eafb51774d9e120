/// Lua shared by the scripts that move a campaign message between states: counters in
/// `camp:{id}:stats` (see Keys.campaignStats), or a journey step's in `journey:{id}:stats`; overall, per variant (`v:<name>:<metric>`) and per
/// channel (`ch:<channel>:<metric>`), plus sends per second (`camp:{id}:sec`, for the live rate).
/// Each script calls `bump` only on a real transition, so counts stay exact through retries and crashes.
public enum CampaignStatsLua {
    public static let source = #"""
        local function bump(msgKey, metric, n, now)
          local m = redis.call('HMGET', msgKey, 'campaign', 'variant', 'channel', 'journey')
          -- A journey's message counts on its step (`journey:{id}:stats`, s:<step>:<metric>).
          if m[4] and metric ~= 'open' then
            local j, step = string.match(m[4], '^([^:]+):(.+)$')
            if j then redis.call('HINCRBY', 'journey:{' .. j .. '}:stats', 's:' .. step .. ':' .. metric, n) end
          end
          if not m[1] then return end
          local stats = 'camp:{' .. m[1] .. '}:stats'
          redis.call('HINCRBY', stats, metric, n)
          if m[2] then redis.call('HINCRBY', stats, 'v:' .. m[2] .. ':' .. metric, n) end
          if m[3] then redis.call('HINCRBY', stats, 'ch:' .. m[3] .. ':' .. metric, n) end
          if metric == 'sent' and now then
            local sec = 'camp:{' .. m[1] .. '}:sec'
            redis.call('HINCRBY', sec, tostring(math.floor(tonumber(now) / 1000)), n)
            redis.call('EXPIRE', sec, 120)
          end
        end
        local terminal = { sent = true, delivered = true, failed = true, skipped = true }
        """#
}

/// Lua shared by the scripts that put a message id back on its send queue (due retries, a resumed
/// campaign's parked messages). Keys derived in the script: fine on one Redis (see Keys.message and
/// Keys.outboundStream); Redis Cluster would need the stream passed in.
public enum RequeueLua {
    public static let source = #"""
        -- Queues message `id` again if it is in one of `states` (a set table); returns whether it did.
        local function requeue(id, states)
          local h = redis.call('HMGET', 'msg:{' .. id .. '}', 'channel', 'lane', 'state')
          if not (h[3] and states[h[3]]) then return false end
          local stream = 'stream:out:' .. h[1]
          if h[2] == 'transactional' then stream = stream .. ':tx' end
          redis.call('XADD', stream, '*', 'id', id)
          return true
        end
        """#
}
