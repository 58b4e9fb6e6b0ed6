"""The script that releases a dead worker's jobs (run by the supervisor)."""

from __future__ import annotations

from jobs.redis.scripts import QUEUE_KEYS_LUA, LuaScript

# KEYS: n queues, their n wake lists, their n priorities sets
# ARGV: now ms, lease ms, worker id prefix (e.g. "host:pid:"), then the n
#       queues' priority prefixes (see QUEUE_KEYS_LUA)
# Makes the jobs leased by a dead worker due now, without waiting for the lease
# to run out. Leased jobs are scored within (now, now + lease], so only that
# window is scanned. Returns how many jobs were released.
RECOVER = LuaScript(
    """#!lua flags=allow-oom
"""
    + QUEUE_KEYS_LUA
    + """
local now, lease, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local nq = #KEYS / 3
local released = 0
for i = 1, nq do
  local here = 0
  for _, q in ipairs(queue_keys(i, 2 * nq, 3)) do
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', q, '(' .. now, now + lease)) do
      local lease_key = 'arq:in-progress:' .. id
      local holder = redis.call('GET', lease_key)
      if holder and string.sub(holder, 1, #prefix) == prefix then
        redis.call('DEL', lease_key)
        redis.call('ZADD', q, 'XX', now, id)
        here = here + 1
      end
    end
  end
  for _ = 1, here do redis.call('LPUSH', KEYS[nq + i], 1) end
  released = released + here
end
return released
"""
)
