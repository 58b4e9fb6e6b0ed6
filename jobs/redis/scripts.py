"""The Lua scripts that move a job through Redis, one round trip each.

A queue is arq's sorted set of job ids scored by due time (ms). Claiming a job
sets arq's in-progress key as a *lease* (value: the worker id, expiring after
LEASE) and pushes the job's score to the lease's end, so running jobs are never
rescanned and a job whose worker died becomes due again by itself when the lease
runs out. Live workers renew their leases on every heartbeat.

Workers that find nothing to do block on a wake list (BLPOP); each enqueue pushes
one token, so one idle worker wakes per job instead of polling.

Scripts that free memory or finish work carry `allow-oom`, so a Redis full under
`noeviction` still drains; the enqueue script does not, so enqueueing into a full
Redis fails before writing anything.
"""

from __future__ import annotations

# The scripts' machinery lives in jobs.redis.lua; its names stay importable here.
from jobs.redis.lua import LuaScript as LuaScript
from jobs.redis.lua import Wait as Wait
from jobs.redis.lua import now_ms as now_ms

# KEYS: job, queue (of the job's priority), wake, unique, result, the queue's
#       priorities set, a hash counting the job when it is queued and a sorted
#       set of the counts not yet written elsewhere (schedules' runs, see
#       jobs.schedules.notify; '' = none), and for a `unique` task its lock
# ARGV: id, payload, score, job ttl ms, unique ttl ms ('' = no unique id),
#       result record ('' = stored elsewhere), result ttl ms, max wake tokens,
#       priority ('' for 0), and with the 7th key: the counter's field and the
#       hash's epoch if it starts now
# Returns 1 when queued, 0 when the id was taken, or the id of the job holding
# the lock while that job exists (queued, running or retrying): nothing written.
ENQUEUE = LuaScript("""
if KEYS[9] then
  local holder = redis.call('GET', KEYS[9])
  if holder and redis.call('EXISTS', 'arq:job:' .. holder) == 1 then
    return holder
  end
end
if ARGV[5] ~= '' then
  if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[5]) then return 0 end
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[9] ~= '' then redis.call('ZADD', KEYS[6], ARGV[9], ARGV[9]) end
if KEYS[7] and KEYS[7] ~= '' then
  redis.call('HSETNX', KEYS[7], 'epoch', ARGV[11])
  redis.call('ZADD', KEYS[8], redis.call('HINCRBY', KEYS[7], ARGV[10], 1), ARGV[10])
end
if KEYS[9] then redis.call('SET', KEYS[9], ARGV[1], 'PX', ARGV[4]) end
if ARGV[6] ~= '' then redis.call('SET', KEYS[5], ARGV[6], 'PX', ARGV[7]) end
redis.call('LPUSH', KEYS[3], 1)
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
return 1
""")

# A Lua function for the scripts that visit every job of a queue: the sorted
# sets of queue `i` (KEYS[i], its priorities set KEYS[sets + i], the prefix of
# its priority queues ARGV[prefixes + i]), highest priority first: those above
# 0, arq's queue (priority 0), those below. A priority whose queue has emptied
# leaves the set. With no priorities set (the common case) it costs one ZRANGE.
QUEUE_KEYS_LUA = """
local function queue_keys(i, sets, prefixes)
  local levels = redis.call('ZRANGE', KEYS[sets + i], 0, -1)
  if #levels == 0 then return {KEYS[i]} end
  local out, placed = {}, false
  for j = #levels, 1, -1 do
    local level = levels[j]
    local key = ARGV[prefixes + i] .. level
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', KEYS[sets + i], level)
    else
      if not placed and tonumber(level) < 0 then
        out[#out + 1] = KEYS[i]
        placed = true
      end
      out[#out + 1] = key
    end
  end
  if not placed then out[#out + 1] = KEYS[i] end
  return out
end
"""

# KEYS: n queues, their n wake lists, their n priorities sets
# ARGV: now ms, lease ms, how many, worker id, retry key ttl s, max payload
#       bytes, then the n queues' priority prefixes (see QUEUE_KEYS_LUA)
# Takes due jobs queue by queue in KEYS order, each queue's highest priority
# first, and among equals the earliest due (FIFO).
# Returns {{id, payload or nil, attempt (-1: aborted, 0: expired), queue index,
#           problem or nil, sorted set}...}, earliest score left in any of them
# (nil if all empty). The last two come only when one is set: `sorted set`
# when the job was not in the queue's own (it has a priority).
# A job that cannot be a payload (over the size limit, not a string) comes with
# an empty payload and a `problem`, so a worker records it FAILED on this claim
# without reading it; a retry counter that is not a number starts again.
CLAIM = LuaScript(
    """#!lua flags=allow-oom
"""
    + QUEUE_KEYS_LUA
    + """
local now, lease, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local maxp = tonumber(ARGV[6])
local nq = #KEYS / 3
local out, visited = {}, {}
local function emit(id, payload, attempt, i, problem, tail)
  local row = {id, payload, attempt, i}
  if problem or tail then
    row[5] = problem or false
    row[6] = tail
  end
  out[#out + 1] = row
end
local function take(q, i, tail)
  local got, rounds = 0, 0
  while want > 0 and rounds < 4 do
    rounds = rounds + 1
    local ids = redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, want)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      local lease_key = 'arq:in-progress:' .. id
      local held = redis.call('PTTL', lease_key)
      if held ~= -2 then
        -- Another worker holds it: hide it until that lease could end.
        if held < 0 then held = lease end
        redis.call('ZADD', q, 'XX', now + held, id)
      else
        local payload = redis.pcall('GET', 'arq:job:' .. id)
        local problem = nil
        if type(payload) == 'table' then
          problem, payload = 'the job key is not a string', ''
        elseif payload and #payload > maxp then
          problem, payload = 'the job is ' .. #payload .. ' bytes', ''
        end
        if not payload then
          redis.call('ZREM', q, id)
          emit(id, false, 0, i, nil, tail)
        elseif redis.call('ZSCORE', 'arq:abort', id) then
          -- Leased and left queued until FINISH records it, as a job that runs
          -- is: arq's Job.result() gives up on a job in no queue and no result.
          redis.call('SET', lease_key, ARGV[4], 'PX', lease)
          redis.call('ZADD', q, 'XX', now + lease, id)
          emit(id, payload, -1, i, nil, tail)
        else
          redis.call('SET', lease_key, ARGV[4], 'PX', lease)
          redis.call('ZADD', q, 'XX', now + lease, id)
          local attempt = redis.pcall('INCR', 'arq:retry:' .. id)
          if type(attempt) == 'table' then  -- not a counter: start it again
            redis.call('SET', 'arq:retry:' .. id, 1)
            attempt = 1
          end
          redis.call('EXPIRE', 'arq:retry:' .. id, ARGV[5])
          emit(id, payload, attempt, i, problem, tail)
          want = want - 1
          got = got + 1
        end
      end
    end
  end
  return got
end
for i = 1, nq do
  local got = 0
  for _, q in ipairs(queue_keys(i, 2 * nq, 6)) do
    visited[#visited + 1] = q
    local tail = nil
    if q ~= KEYS[i] then tail = q end
    got = got + take(q, i, tail)
  end
  if got > 0 then redis.call('LPOP', KEYS[nq + i], got) end
end
local earliest = false
for _, q in ipairs(visited) do
  local first = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  if first[2] then
    local score = tonumber(first[2])
    if not earliest or score < earliest then earliest = score end
  end
end
return {out, earliest}
"""
)

# KEYS: queue, result, arq's result ('' = not written: ARQ_RESULTS off)
# ARGV: id, worker id, result record ('' = stored elsewhere), result ttl ms, now ms,
#       arq's result record
# Frees memory before it writes, so it succeeds on a full Redis. Indexes the job
# in `jobs:recent` by end time (the heartbeat trims it: TRIM_RECENT).
# Returns 1 if the lease was still ours, else the worker id holding it, or 0
# when no one held it (it lapsed, or Redis forgot it).
# (FINISH_BODY sets `owned`; a workflow's step ends with it too: jobs.redis.flows.)
FINISH_BODY = """
local id = ARGV[1]
local lease_key = 'arq:in-progress:' .. id
local holder = redis.call('GET', lease_key)
local owned = holder == ARGV[2]
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', 'arq:abort', id)
redis.call('DEL', 'arq:job:' .. id, lease_key, 'arq:retry:' .. id)
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[4]) end
redis.call('ZADD', 'jobs:recent', ARGV[5], id)
redis.call('PUBLISH', 'jobs:done:' .. id, ARGV[3])
"""
FINISH = LuaScript(
    "#!lua flags=allow-oom"
    + FINISH_BODY
    + """if owned then return 1 end
return holder or 0
"""
)

# KEYS: queue, wake, result
# ARGV: id, due ms, result record ('' = stored elsewhere), result ttl ms,
#       'release' to give the attempt back (shutdown) or '' (a failed attempt)
RETRY = LuaScript("""#!lua flags=allow-oom
local id = ARGV[1]
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
redis.call('DEL', 'arq:in-progress:' .. id)
if ARGV[5] == 'release' then
  local left = redis.call('DECR', 'arq:retry:' .. id)
  if left <= 0 then redis.call('DEL', 'arq:retry:' .. id) end
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4]) end
redis.call('LPUSH', KEYS[2], 1)
return 1
""")

# ARGV: worker id, lease ms, now ms, then (queue key, job id) pairs
# Returns the ids whose lease is no longer this worker's.
RENEW = LuaScript("""#!lua flags=allow-oom
local worker, lease, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local lost = {}
for i = 4, #ARGV, 2 do
  local q, id = ARGV[i], ARGV[i + 1]
  local lease_key = 'arq:in-progress:' .. id
  if redis.call('GET', lease_key) == worker then
    redis.call('PEXPIRE', lease_key, lease)
    redis.call('ZADD', q, 'XX', now + lease, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
""")

# KEYS: recent index
# ARGV: oldest end time to keep (ms), most entries to keep
# Keeps `jobs:recent` as long as results and at most RECENT_MAX long; every
# worker's heartbeat runs it, so FINISH stays a plain ZADD.
TRIM_RECENT = LuaScript("""#!lua flags=allow-oom
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[2]))
return 1
""")

# KEYS: workers index
# ARGV: last heartbeat (ms) at or before which to look, most entries to look at
# Drops the workers whose description (`jobs:worker:<id>`, expiring about a
# LEASE after their last heartbeat) is gone: killed ones never unregister.
# Every worker's heartbeat runs it; a live worker late to beat re-registers.
PRUNE_WORKERS = LuaScript("""#!lua flags=allow-oom
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local pruned = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', 'jobs:worker:' .. id) == 0 then
    redis.call('ZREM', KEYS[1], id)
    pruned = pruned + 1
  end
end
return pruned
""")

# KEYS: result ('' = stored elsewhere)
# ARGV: id, record, result ttl ms
# Writes a RUNNING record with new progress and tells live listeners.
PROGRESS = LuaScript("""#!lua flags=allow-oom
if KEYS[1] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
redis.call('PUBLISH', 'jobs:progress:' .. ARGV[1], ARGV[2])
return 1
""")

# KEYS: queue, result, arq's result ('' = not written)
# ARGV: id, now ms, FAILED record ('' = stored elsewhere), result ttl ms,
#       arq's result record
# Returns 1: removed while queued (recorded FAILED); 2: running, its worker is
# told (arq's abort set plus a message); 0: not queued nor running.
CANCEL = LuaScript("""#!lua flags=allow-oom
local id = ARGV[1]
if redis.call('EXISTS', 'arq:in-progress:' .. id) == 1 then
  redis.call('ZADD', 'arq:abort', ARGV[2], id)
  redis.call('PUBLISH', 'jobs:cancel', id)
  return 2
end
if redis.call('ZREM', KEYS[1], id) == 0 then return 0 end
redis.call('DEL', 'arq:job:' .. id, 'arq:retry:' .. id)
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[4]) end
redis.call('ZADD', 'jobs:recent', ARGV[2], id)
redis.call('PUBLISH', 'jobs:done:' .. id, ARGV[3])
return 1
""")

ALL = (
    ENQUEUE,
    CLAIM,
    FINISH,
    RETRY,
    RENEW,
    TRIM_RECENT,
    PRUNE_WORKERS,
    PROGRESS,
    CANCEL,
)
