-- Append an alert to the stream exactly once, and publish a live copy.
-- KEYS[1]  id key (riskstream:alert-ids:<alert_id>)
-- KEYS[2]  stream (riskstream:alerts)
-- ARGV[1]  seconds the id is remembered
-- ARGV[2]  approximate MAXLEN of the stream
-- ARGV[3]  pub/sub channel (riskstream:alerts:live)
-- ARGV[4]  JSON copy for the channel
-- ARGV[5..] field, value, field, value, ...
-- Returns the new entry id, or false when this alert id was already appended.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return false
end
local entry = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 5))
redis.call('PUBLISH', ARGV[3], ARGV[4])
return entry
