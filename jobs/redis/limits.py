"""The rate limit script: one task's starts spaced out across all workers.

A limit of N per period is a start every `interval` = period / N ms. Redis
keeps, per task, the next free turn (`free`) and, for the starts themselves,
GCRA's theoretical time of the next one (`tat`). A job whose turn has not come
is given the next free turn, remembered for it, and goes back to its queue due
then; when a worker claims it again its turn has come. So a backlog over the
limit waits in the queue (no worker slot held, no polling), each job claimed
twice (three times if its turn came late). A turn taken late (busy workers, a
wake-up that came late) may still start if the starts are at most one interval
ahead of the rate (GCRA's tolerance), else it takes the next free turn: so in
any period at most N + 1 jobs start, and late jobs never start in a bunch.
"""

from __future__ import annotations

from jobs.redis.keys import RATE_KEY_PREFIX, TURNS_KEY_SUFFIX
from jobs.redis.scripts import LuaScript

TURNS_KEPT = 86_400_000  # ms a turn is remembered for its job (then dropped)
TOLERANCE = 1.0  # intervals the starts may run ahead of the rate (GCRA's tau)

# KEYS: the task's rate hash, its turns
# ARGV: interval ms, job id, ms a turn is kept (TURNS_KEPT), TOLERANCE
# Returns 0 when the job may start now, else the ms its turn comes at.
# Redis's clock decides, so every worker's starts are spaced on one clock.
RATE = LuaScript("""
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local interval, id = tonumber(ARGV[1]), ARGV[2]
local kept, tau = tonumber(ARGV[3]), tonumber(ARGV[4]) * interval
local state = redis.call('HMGET', KEYS[1], 'free', 'tat')
local free, tat = tonumber(state[1]) or 0, tonumber(state[2]) or 0
local function keep()
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(free, tat) - now) + 1000)
end
local turn = redis.call('ZSCORE', KEYS[2], id)
if turn then
  turn = tonumber(turn)
  if turn > now then return math.ceil(turn) end
  redis.call('ZREM', KEYS[2], id)
end
if (turn or free <= now) and now >= tat - tau then
  tat = math.max(tat, now) + interval
  if free < now + interval then free = now + interval end
  redis.call('HSET', KEYS[1], 'free', tostring(free), 'tat', tostring(tat))
  keep()
  return 0
end
-- Not its turn yet, or too soon after the last starts: the next free turn.
if free < now then free = now end
local given = free
free = free + interval
redis.call('HSET', KEYS[1], 'free', tostring(free))
keep()
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - kept)
redis.call('ZADD', KEYS[2], given, id)
redis.call('PEXPIRE', KEYS[2], math.ceil(given - now) + kept)
return math.ceil(given)
""")


def rate_keys(task_path: str) -> list[str]:
    """The RATE script's keys for one task."""
    key = RATE_KEY_PREFIX + task_path
    return [key, key + TURNS_KEY_SUFFIX]
