-- Overwrite a "latest state" hash unless it already holds a later state.
-- KEYS[1]  hash (riskstream:risk:<symbol>, riskstream:customer:<id>)
-- ARGV[1]  name of the sequence field (n_ticks, count)
-- ARGV[2]  this state's sequence number; it only grows for a key
-- ARGV[3..] field, value, field, value, ...
-- Returns 1 when written, 0 when the stored state is later (a replay after a rebalance).
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if current > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
