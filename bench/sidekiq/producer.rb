# Sidekiq producer, one phase per process, as bench/harness.py runs its
# producers (see bench/native.py): prints "RESULT {json}".
#
#   ruby producer.rb CFG_JSON --phase single|bulk|threads|lat --n N
#        [--batch 100] [--threads 16] [--gaps FILE]
#
# single:  N x Noop.perform_async, one call at a time (Sidekiq's client is
#          plain blocking code, like Celery's and Dramatiq's)
# bulk:    Sidekiq::Client.push_bulk of `batch` jobs, repeated (its bulk API)
# threads: N x Noop.perform_async shared by `threads` threads, the client's
#          connection pool as large (a threaded web server's path)
# lat:     Lat jobs at the Poisson arrival offsets in FILE (drawn by the
#          harness with its seed); prints the enqueue stamps.
require "json"
require_relative "jobs"

cfg = JSON.parse(ARGV[0] || "{}")
args = ARGV[1..].each_slice(2).to_h { |k, v| [k.sub(/\A--/, ""), v] }
phase = args.fetch("phase")
n = Integer(args.fetch("n"))
batch = Integer(args.fetch("batch", "100"))
threads = Integer(args.fetch("threads", "16"))

def cpu_seconds
  Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
end

def timed
  cpu0 = cpu_seconds
  t0 = Bench.monotonic
  yield
  { "t_first" => t0, "t_last" => Bench.monotonic, "cpu_s" => cpu_seconds - cpu0 }
end

def bulk(n, batch)
  left = n
  while left > 0
    k = [batch, left].min
    Sidekiq::Client.push_bulk("class" => Noop, "args" => Array.new(k) { [] })
    left -= k
  end
end

def threaded(n, threads)
  Sidekiq.configure_client { |config| config.redis = { url: Bench::LIB_URL, size: threads } }
  shares = Array.new(threads) { |i| n / threads + (i < n % threads ? 1 : 0) }
  gate = Queue.new
  workers = shares.map { |k| Thread.new { gate.pop; k.times { Noop.perform_async } } }
  timed do
    threads.times { gate << true }
    workers.each(&:join)
  end
end

def latency(n, gaps)
  enq = {}
  t_next = Bench.monotonic
  n.times do |i|
    t_next += gaps[i]
    wait = t_next - Bench.monotonic
    sleep(wait) if wait > 0
    enq[i] = Bench.monotonic
    Lat.perform_async(i)
  end
  { "enq" => enq }
end

res =
  case phase
  when "single" then timed { n.times { Noop.perform_async } }
  when "bulk" then timed { bulk(n, batch) }
  when "threads" then threaded(n, threads)
  when "lat" then latency(n, JSON.parse(File.read(args.fetch("gaps"))))
  else raise "unknown phase #{phase}"
  end
$stdout.write("RESULT #{JSON.generate(res.merge("cfg" => cfg))}\n")
$stdout.flush
