"""The Lua scripts of workflows (jobs.chain, group, chord), one round trip each.

A workflow is a hash, `jobs:workflow:<id>`, holding its stages: each stage is
one or more steps run side by side (a chain's step is a stage of one, a group
a stage of many, a chord a group's stage then its callback's). Every step's job
is made at enqueue, payload and READY record included; a later stage's payload
is kept in two halves around the slot of the previous stage's return value.

The worker ends a step's job with FINISH_STEP instead of FINISH: in the same
script, the step is counted once (HSETNX on its id, and only the job the
workflow made for that slot counts), and the last step of a stage to count
starts the next stage or ends the workflow. So the next stage is queued exactly
once, by one script run, however many workers, retries or re-runs after a
SIGKILL the steps went through; a worker killed before FINISH_STEP leaves its
job to be run again after its lease, as any job.

Hash fields: `stages`, `stage` (running now), `left` (its steps not counted),
`status` (RUNNING, SUCCESSFUL, FAILED), `result` (JSON), `failed` (the job id),
`created`, `ended` (ms), `layout` (JSON, for readers); per stage s: `n:s`
(steps), `g:s` ('1': its value is the list of its steps' values); per step
s:i: `j:` job id, `q:`/`w:` its queue and wake keys, `h:` payload (or its
head), `t:` payload tail (only for a step taking the previous value), `x:`
its job key's TTL (ms, counted from when its stage is queued), `pk:`/`pv:`
its queue's priorities set and its priority (when not 0), `rk:`/`rv:` its
READY record's key and bytes (when the queue's Redis holds results), `r:` its
return value; `d:<job id>`: counted. A queued step's `h:`, `t:` and `rv:` are
dropped (the job has them), so a workflow's hash shrinks as it runs.
"""

from __future__ import annotations

from string import Template

from jobs.redis.keys import (
    DONE_CHANNEL_PREFIX,
    JOB_KEY_PREFIX,
    WAKE_TOKENS_MAX,
)
from jobs.redis.scripts import FINISH_BODY, LuaScript

_FUNCTIONS = Template("""
local function start_stage(wf, s, value, now)
  local n = tonumber(redis.call('HGET', wf, 'n:' .. s))
  local rttl = redis.call('HGET', wf, 'rttl')
  for i = 0, n - 1 do
    local f = s .. ':' .. i
    local id, q, wake, head, tail, ttl, rk, rv, pk, pv = unpack(redis.call('HMGET',
      wf, 'j:' .. f, 'q:' .. f, 'w:' .. f, 'h:' .. f, 't:' .. f, 'x:' .. f,
      'rk:' .. f, 'rv:' .. f, 'pk:' .. f, 'pv:' .. f))
    local payload = head
    if tail then payload = head .. value .. tail end
    redis.call('SET', '$JOB' .. id, payload, 'PX', ttl)
    redis.call('ZADD', q, now, id)
    if pk then redis.call('ZADD', pk, pv, pv) end
    if rk then redis.call('SET', rk, rv, 'PX', rttl) end
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, $WAKE_MAX - 1)
    -- Queued: the payload and record are the job's now, not the workflow's.
    redis.call('HDEL', wf, 'h:' .. f, 't:' .. f, 'rv:' .. f)
  end
  redis.call('HSET', wf, 'stage', s, 'left', n)
end

local function stage_value(wf, s, value)
  if redis.call('HGET', wf, 'g:' .. s) ~= '1' then return value end
  local n = tonumber(redis.call('HGET', wf, 'n:' .. s))
  local parts = {}
  for i = 0, n - 1 do
    parts[#parts + 1] = redis.call('HGET', wf, 'r:' .. s .. ':' .. i)
  end
  return '[' .. table.concat(parts, ',') .. ']'
end

local function advance(wf, wid, id, s, i, ok, value, now)
  local status, stage, member = unpack(redis.call('HMGET', wf,
    'status', 'stage', 'j:' .. s .. ':' .. i))
  if status ~= 'RUNNING' or stage ~= s or member ~= id then return 0 end
  if redis.call('HSETNX', wf, 'd:' .. id, 1) == 0 then return 0 end
  redis.call('PEXPIRE', wf, redis.call('HGET', wf, 'wttl'))
  if not ok then
    redis.call('HSET', wf, 'status', 'FAILED', 'failed', id, 'ended', now)
    redis.call('PUBLISH', '$DONE' .. wid, '')
    return 2
  end
  redis.call('HSET', wf, 'r:' .. s .. ':' .. i, value)
  if redis.call('HINCRBY', wf, 'left', -1) > 0 then return 1 end
  local v = stage_value(wf, s, value)
  local nxt = tonumber(s) + 1
  if nxt == tonumber(redis.call('HGET', wf, 'stages')) then
    redis.call('HSET', wf, 'status', 'SUCCESSFUL', 'result', v, 'ended', now)
    redis.call('PUBLISH', '$DONE' .. wid, '')
    return 3
  end
  start_stage(wf, nxt, v, now)
  return 4
end
""").substitute(
    JOB=JOB_KEY_PREFIX,
    WAKE_MAX=WAKE_TOKENS_MAX,
    DONE=DONE_CHANNEL_PREFIX,
)

# KEYS: workflow hash, workflows index
# ARGV: workflow id, now ms, hash ttl ms, index entries kept, then field, value...
# Writes the workflow and queues its first stage. Returns 1, or 0 when the id
# was taken (nothing written).
ENQUEUE_FLOW = LuaScript(
    _FUNCTIONS
    + """
local wf = KEYS[1]
if redis.call('EXISTS', wf) == 1 then return 0 end
for k = 5, #ARGV, 2 do redis.call('HSET', wf, ARGV[k], ARGV[k + 1]) end
redis.call('HSET', wf, 'status', 'RUNNING', 'created', ARGV[2], 'wttl', ARGV[3])
redis.call('PEXPIRE', wf, ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[4]))
start_stage(wf, 0, nil, tonumber(ARGV[2]))
return 1
"""
)

# KEYS: FINISH's (queue, result, arq's result), then the workflow hash
# ARGV: FINISH's six (id, worker id, record, result ttl ms, now ms, arq's
#       record), then workflow id, stage, index, 'ok' or '' (failed), return
#       value (JSON)
# Returns {the lease as FINISH answers (1: ours, else its holder or 0), what the
# step did: 0 nothing (a duplicate, or the workflow ended), 1 counted, 2 failed
# it, 3 ended it, 4 next stage}.
FINISH_STEP = LuaScript(
    "#!lua flags=allow-oom"
    + _FUNCTIONS
    + FINISH_BODY
    + """
local did = advance(KEYS[4], ARGV[7], id, ARGV[8], ARGV[9], ARGV[10] == 'ok',
                    ARGV[11], tonumber(ARGV[5]))
if owned then return {1, did} end
return {holder or 0, did}
"""
)

# KEYS: workflow hash
# ARGV: job id, now ms, workflow id, stage, index
# Fails the workflow of a step cancelled while queued (it never reaches FINISH).
STEP_FAILED = LuaScript(
    "#!lua flags=allow-oom"
    + _FUNCTIONS
    + """
return advance(KEYS[1], ARGV[3], ARGV[1], ARGV[4], ARGV[5], false, '',
               tonumber(ARGV[2]))
"""
)

ALL = (ENQUEUE_FLOW, FINISH_STEP, STEP_FAILED)
