# Sidekiq jobs for bench/harness.py (started by ../sidekiq_bench.py as
# `sidekiq -r ./jobs.rb -c C -q default`), doing what bench/jobside.py says
# every system's jobs do: INCR one counter in the separate "harness" Redis; the
# job whose INCR hits k*N stamps bench:done, the one at k*N+1 stamps
# bench:first; `lat` jobs write their start time into the bench:lat hash.
#
# Timestamps: Process.clock_gettime(CLOCK_MONOTONIC), the clock Python's
# time.monotonic() reads.
require "sidekiq"
require "redis"
require "connection_pool"
require "logger"

# Debian pairs Sidekiq 6.4.1 with redis-rb 4.8.0, which prints a deprecation
# warning (with a caller lookup) on every BRPOP Sidekiq's fetcher sends and
# every SADD its client sends: per-job stderr writes no Sidekiq user with
# matching versions has. Silenced; sadd's Integer return (what redis-rb 5 does)
# also skips building the SADD message; Sidekiq ignores both return values.
Redis.silence_deprecations = true
Redis.sadd_returns_boolean = false

module Bench
  HOST = ENV.fetch("BENCH_HOST", "127.0.0.1")
  LIB_PORT = Integer(ENV.fetch("BENCH_REDIS_PORT", "6390"))
  HARNESS_PORT = Integer(ENV.fetch("BENCH_HARNESS_PORT", "6391"))
  LIB_URL = "redis://#{HOST}:#{LIB_PORT}/0"
  N = Integer(ENV.fetch("BENCH_N", "0"))
  K_COUNT = "bench:count"
  K_FIRST = "bench:first"
  K_DONE = "bench:done"
  K_LAT = "bench:lat"

  # One harness connection per concurrently running job at most, as redis-py's
  # connection pool gives the Python sync workers (a redis-rb client is one
  # socket behind a mutex).
  POOL = ConnectionPool.new(size: Integer(ENV.fetch("BENCH_HARNESS_POOL", "105")), timeout: 5) do
    Redis.new(host: HOST, port: HARNESS_PORT)
  end

  def self.monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def self.marks(count)
    keys = []
    keys << K_DONE if N > 0 && (count % N).zero?
    keys << K_FIRST if N > 1 && count % N == 1
    keys
  end

  def self.done
    POOL.with do |r|
      count = r.incr(K_COUNT)
      now = monotonic
      marks(count).each { |k| r.lpush(k, now.to_s) }
    end
  end

  def self.started(i)
    POOL.with { |r| r.hset(K_LAT, i.to_s, monotonic.to_s) }
  end
end

Sidekiq.configure_server do |config|
  config.redis = { url: Bench::LIB_URL }
  # The project's worker runs with `-l warning`; Sidekiq logs two INFO lines
  # per job (start, done) by default: WARN here, for the same reason.
  config.logger.level = Logger::WARN
end

Sidekiq.configure_client do |config|
  config.redis = { url: Bench::LIB_URL, size: 1 }
end

class Noop
  include Sidekiq::Worker

  def perform
    Bench.done
  end
end

class Lat
  include Sidekiq::Worker

  def perform(i)
    Bench.started(i)
  end
end
