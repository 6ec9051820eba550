-- Overwrite "latest state" hashes unless they already hold a later state, for a whole batch.
-- KEYS[i]  hash i (riskstream:risk:<symbol>, riskstream:customer:<id>)
-- ARGV[1]  JSON array; item i is [sequence field, sequence number, {field: value, ...}] for KEYS[i].
--          The sequence number only grows for a key (n_ticks, count).
-- Returns the number of hashes written; a hash holding a later state (a replay after a
-- rebalance) is left alone.
local items = cjson.decode(ARGV[1])
local written = 0
for i, item in ipairs(items) do
  local current = tonumber(redis.call('HGET', KEYS[i], item[1]) or '-1')
  if current <= item[2] then
    local args = {}
    for name, value in pairs(item[3]) do
      args[#args + 1] = name
      args[#args + 1] = value
    end
    redis.call('HSET', KEYS[i], unpack(args))
    written = written + 1
  end
end
return written
