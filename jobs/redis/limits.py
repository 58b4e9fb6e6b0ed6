"""The rate limit script: one task's starts spaced out across all workers.

A limit of N per period is a start every `interval` = period / N ms (GCRA: the
generic cell rate algorithm): Redis keeps, per task, the time the next start
may happen. A job whose turn has not come is given the next free turn,
remembered for it, and goes back to its queue due at that time; when a worker
claims it again its turn has come. So a backlog over the limit waits in the
queue (no worker slot held, no polling), each job claimed twice at most.
"""

from __future__ import annotations

from jobs.redis.scripts import LuaScript

RATE_KEY_PREFIX = "jobs:rate:"  # + task path: ms of the task's next free start
RESERVED_SUFFIX = ":turns"  # after the rate key: sorted set, job id -> its turn (ms)
TURNS_KEPT = 86_400_000  # ms a turn is remembered for its job (then dropped)

# KEYS: the task's rate key, its turns
# ARGV: now ms, interval ms, job id, ms a turn is kept (TURNS_KEPT)
# Returns 0 when the job may start now, else the ms its turn comes at.
RATE = LuaScript("""
local now, interval, id = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local turn = redis.call('ZSCORE', KEYS[2], id)
if turn then
  turn = tonumber(turn)
  if turn > now then return math.ceil(turn) end
  redis.call('ZREM', KEYS[2], id)
  return 0
end
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
local next_free = free + interval
redis.call('SET', KEYS[1], tostring(next_free), 'PX', math.ceil(next_free - now) + 1000)
if free <= now then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
redis.call('ZADD', KEYS[2], free, id)
redis.call('PEXPIRE', KEYS[2], math.ceil(free - now) + tonumber(ARGV[4]))
return math.ceil(free)
""")


def rate_keys(task_path: str) -> list[str]:
    """The RATE script's keys for one task."""
    key = RATE_KEY_PREFIX + task_path
    return [key, key + RESERVED_SUFFIX]
