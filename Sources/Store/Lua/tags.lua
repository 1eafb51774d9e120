-- tag_remove_members: one chunk of a tag's deletion (TagStore.delete runs it until the tag's set is
-- empty, so no single call holds Redis for long): the tag leaves each customer's tag set and the ids
-- leave the tag's set (merged or erased ids too).
-- KEYS: the tag's set (Keys.tag), then each customer's tag set (Keys.customerTags), in ARGV's order.
-- ARGV: the tag, then the customer ids. Returns how many customers had the tag.
register('tag_remove_members', function(keys, args)
  local tag, removed = args[1], 0
  for i = 2, #args do
    removed = removed + redis.call('SREM', keys[i], tag)
  end
  redis.call('SREM', keys[1], unpack(args, 2))
  return removed
end)

-- index_cards: the size of each set in KEYS (index keys of one shard, IndexShards.totalCards). Reads only.
register('index_cards', function(keys, args)
  local out = {}
  for i, k in ipairs(keys) do out[i] = redis.call('SCARD', k) end
  return out
end)
