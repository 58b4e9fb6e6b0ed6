// What every benchmark job does, as bench/jobside.py does it,
// in Node: the jobs talk to the separate "harness" Redis (BENCH_HARNESS_PORT),
// so that the broker Redis (BENCH_REDIS_PORT) only sees BullMQ's own commands.
//
// Timestamps: process.hrtime.bigint() is libuv's uv_hrtime(), i.e.
// clock_gettime(CLOCK_MONOTONIC), the clock Python's time.monotonic() reads,
// so worker and producer stamps subtract directly from the harness's.
import Redis from 'ioredis';

export const HOST = process.env.BENCH_HOST || '127.0.0.1';
export const LIB_PORT = parseInt(process.env.BENCH_REDIS_PORT || '6390', 10);
export const HARNESS_PORT = parseInt(process.env.BENCH_HARNESS_PORT || '6391', 10);
export const QUEUE = 'bench';

export const K_COUNT = 'bench:count';
export const K_FIRST = 'bench:first';
export const K_DONE = 'bench:done';
export const K_LAT = 'bench:lat';

const N = parseInt(process.env.BENCH_N || '0', 10) || 0;

export const monotonic = () => Number(process.hrtime.bigint()) / 1e9;

function marks(count) {
  const keys = [];
  if (N && count % N === 0) keys.push(K_DONE);
  if (N > 1 && count % N === 1) keys.push(K_FIRST);
  return keys;
}

let harness = null;
function h() {
  if (harness === null) harness = new Redis({ host: HOST, port: HARNESS_PORT });
  return harness;
}

// jobside.done_async(): INCR the counter; the job whose INCR hits k*N stamps
// bench:done, the one that hits k*N+1 stamps bench:first.
export async function doneAsync() {
  const client = h();
  const count = await client.incr(K_COUNT);
  const now = monotonic();
  for (const key of marks(count)) {
    await client.lpush(key, String(now));
  }
}

// jobside.started_async(i)
export async function startedAsync(i) {
  await h().hset(K_LAT, String(i), String(monotonic()));
}

export async function closeHarness() {
  if (harness !== null) await harness.quit();
}
