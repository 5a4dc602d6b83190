"""The Redis store's scripts: each budget step is one atomic script on integer nanodollars.

KEYS, all of one budget, scope value and window, sharing one hash tag (one Redis Cluster slot):
  1 spent     settled nanodollars (string integer)
  2 reserved  nanodollars held by live reservations (string integer, the sum of the live holds)
  3 holds     hash: reservation id -> held nanodollars, or "x" once expired (kept until settled, so a
              late settlement still counts and a repeated one does not)
  4 expiries  sorted set: live reservation id -> expiry (ms, the Redis server's clock: workers' clocks may
              disagree, the server's is one)
  5 fired     set of the thresholds already fired in this window
  6 settled   a marker that this reservation was settled, living the settle's marker ms: a settle retried
              after its reply was lost, or a reserve or extend arriving after its call's settlement (a stalled
              connection delivering it late), changes nothing
Numbers handed to redis.call go through string.format('%d'): Lua would print large ones as 1e+14.
"""

from __future__ import annotations

__all__ = ["EXTEND", "RESERVE", "SETTLE", "STATUS"]

_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 256)
if #gone > 0 then
  local freed = 0
  for _, id in ipairs(gone) do
    local held = tonumber(redis.call('HGET', KEYS[3], id))
    if held then
      freed = freed + held
      redis.call('HSET', KEYS[3], id, 'x')
    end
  end
  redis.call('ZREM', KEYS[4], unpack(gone))
  redis.call('DECRBY', KEYS[2], string.format('%d', freed))
end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local reserved = tonumber(redis.call('GET', KEYS[2]) or '0')
local function keep(ttl)
  if ttl ~= '0' then
    for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
"""

STATUS = _COMMON + "return {1, spent, reserved}\n"

# ARGV: id, amount, limit (-1: never refuse), hold ms, keep ms (0: no window)
RESERVE = (
    _COMMON
    + """
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 or redis.call('EXISTS', KEYS[6]) == 1 then
  return {1, spent, reserved}
end
local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if limit >= 0 and spent + reserved + amount > limit then return {0, spent, reserved} end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], string.format('%d', now + tonumber(ARGV[4])), ARGV[1])
reserved = redis.call('INCRBY', KEYS[2], ARGV[2])
keep(ARGV[5])
return {1, spent, reserved, amount}
"""
)

# ARGV: id, add, total, limit (-1: never refuse), hold ms, keep ms
# A live reservation grows by add; an expired or lost one comes back whole (total), if it fits; a settled one
# (its call ended while this request was on its way) stays settled.
EXTEND = (
    _COMMON
    + """
if redis.call('EXISTS', KEYS[6]) == 1 then return {1, spent, reserved, tonumber(ARGV[3])} end
local held = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '')
local amount = tonumber(ARGV[3])
local delta = amount
if held then
  amount = held + tonumber(ARGV[2])
  delta = tonumber(ARGV[2])
end
local limit = tonumber(ARGV[4])
if limit >= 0 and spent + reserved + delta > limit then return {0, spent, reserved, held or 0} end
redis.call('HSET', KEYS[3], ARGV[1], string.format('%d', amount))
redis.call('ZADD', KEYS[4], string.format('%d', now + tonumber(ARGV[5])), ARGV[1])
reserved = redis.call('INCRBY', KEYS[2], string.format('%d', delta))
keep(ARGV[6])
return {1, spent, reserved, amount}
"""
)

# ARGV: id, actual, keep ms, marker ms, then (threshold, level) pairs.
# A reservation marked settled was settled already: exactly once. One missing from holds (never stored, or lost
# with a Redis that restarted empty) still counts its cost.
SETTLE = (
    _COMMON
    + """
if redis.call('EXISTS', KEYS[6]) == 1 then return {0, spent, reserved} end
redis.call('SET', KEYS[6], '1', 'PX', ARGV[4])
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  redis.call('HDEL', KEYS[3], ARGV[1])
  if held ~= 'x' then
    redis.call('ZREM', KEYS[4], ARGV[1])
    reserved = redis.call('DECRBY', KEYS[2], held)
  end
end
spent = redis.call('INCRBY', KEYS[1], ARGV[2])
local out = {1, spent, reserved}
for i = 5, #ARGV, 2 do
  if spent >= tonumber(ARGV[i + 1]) and redis.call('SADD', KEYS[5], ARGV[i]) == 1 then
    out[#out + 1] = ARGV[i]
  end
end
keep(ARGV[3])
return out
"""
)
