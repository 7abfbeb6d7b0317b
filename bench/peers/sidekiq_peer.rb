#!/usr/bin/ruby
# frozen_string_literal: true

# Sidekiq beside forq (bench/peers/README.md).
#   ruby bench/peers/sidekiq_peer.rb --redis-port P --workload drain|steady --jobs N --rate R --duration S
# The driver enqueues with Sidekiq::Client.push_bulk (1,000 a call) and runs one worker process:
# `sidekiq -r THIS_FILE -c 10` (Sidekiq's default concurrency), log level WARN (no log line per
# job). Sidekiq stores no results. The same file is the job code the worker requires (the
# driver's part runs only when this file is the program).
#
# The same as common.js / peer_common.py: argument parsing, the payload, the recorder the
# handler calls, and the driver that prints one JSON line.
require 'json'
require 'etc'
require 'fileutils'
require 'tmpdir'
require 'optparse'
require 'sidekiq'

# redis-rb 4.8 warns on every SADD that Sidekiq 6.4's client sends (a deprecation that concerns
# redis-rb 5, not this bench).
Redis.silence_deprecations = true

module PeerBench
  CONCURRENCY = 10
  QUEUE = 'bench'

  # CLOCK_MONOTONIC in µs, the clock common.js and peer_common.py use too.
  def self.mono_us = Process.clock_gettime(Process::CLOCK_MONOTONIC, :microsecond)

  # {"seq":N,"t":µs,"pad":"xx..."}, padded so that its JSON is `bytes` long.
  def self.payload(seq, t, bytes)
    p = { 'seq' => seq, 't' => t, 'pad' => '' }
    p['pad'] = 'x' * [0, bytes - JSON.generate(p).bytesize].max
    p
  end

  # The worker process's side: record(seq, t) once per run (from any of Sidekiq's threads), all
  # in this process's memory. When every job has run it writes the report file once; a progress
  # file every 1,000 jobs lets the driver tell a stall.
  class Recorder
    def initialize
      @n = Integer(ENV.fetch('BENCH_JOBS'))
      @report = ENV.fetch('BENCH_REPORT')
      @seen = "\0".b * @n
      @lat = ENV['BENCH_WORKLOAD'] == 'steady' ? Array.new(@n, 0) : nil
      @runs = @distinct = @dups = @bad = 0
      @first_us = @first_cpu_us = 0
      @reported = false
      @lock = Mutex.new
    end

    def record(seq, t)
      now = PeerBench.mono_us
      @lock.synchronize do
        @runs += 1
        if @runs == 1
          @first_us = now
          @first_cpu_us = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID, :microsecond)
        end
        unless seq.is_a?(Integer) && seq >= 0 && seq < @n
          @bad += 1
          return
        end
        if @seen.getbyte(seq) != 0
          @dups += 1
          return
        end
        @seen.setbyte(seq, 1)
        @lat[seq] = now - t if @lat
        @distinct += 1
        File.write("#{@report}.progress", @distinct.to_s) if (@distinct % 1000).zero?
        write_report(now) if @distinct == @n && !@reported
      end
    end

    private

    def write_report(now)
      @reported = true
      r = { runs: @runs, distinct: @distinct, dups: @dups, bad: @bad, first_us: @first_us,
            done_us: now, first_cpu_us: @first_cpu_us, lat_us: @lat || [] }
      File.write("#{@report}.tmp", JSON.generate(r))
      File.rename("#{@report}.tmp", @report)
    end
  end

  def self.recorder = (@recorder ||= Recorder.new)
end

class BenchNoop
  include Sidekiq::Worker
  sidekiq_options queue: PeerBench::QUEUE

  def perform(data)
    PeerBench.recorder.record(data['seq'], data['t'])
  end
end

Sidekiq.configure_server do |config|
  config.redis = { url: "redis://127.0.0.1:#{ENV.fetch('BENCH_REDIS_PORT', '6379')}/0" }
  Sidekiq.logger.level = Logger::WARN
  # Built at boot, not by the first job (the other peers' recorders are ready before any job).
  PeerBench.recorder if ENV['BENCH_JOBS']
end

module PeerBench
  CLK_TCK = Etc.sysconf(Etc::SC_CLK_TCK)

  # utime + stime of a process and its descendants (µs), from /proc/<pid>/stat.
  def self.proc_tree_cpu_us(pid)
    s = File.read("/proc/#{pid}/stat")
    f = s[(s.rindex(')') + 2)..].split
    total = (Integer(f[11]) + Integer(f[12])) * 1e6 / CLK_TCK
    Dir.children("/proc/#{pid}/task").each do |task|
      File.read("/proc/#{pid}/task/#{task}/children").split.each { |k| total += proc_tree_cpu_us(Integer(k)) }
    end
    total
  rescue SystemCallError, ArgumentError
    0.0
  end

  def self.redis_cpu_us(redis)
    info = redis.info('cpu')
    (Float(info['used_cpu_user']) + Float(info['used_cpu_sys'])) * 1e6
  end

  def self.alive?(pid) = Process.waitpid(pid, Process::WNOHANG).nil?

  # Ready = some client of this Redis is blocked (the worker waiting for a job).
  def self.wait_blocked(redis, pid, seconds)
    until_t = mono_us + seconds * 1_000_000
    while mono_us < until_t
      raise 'the worker exited' unless alive?(pid)
      return if redis.client(:list).any? { |c| c['flags'].include?('b') }

      sleep 0.02
    end
    raise "the worker was not waiting for jobs within #{seconds} s"
  end

  def self.wait_report(report, pid, n)
    last = ''
    last_change = mono_us
    loop do
      return JSON.parse(File.read(report)) if File.exist?(report)
      raise "the worker exited (#{$?})" unless alive?(pid)

      sleep 0.005
      p = File.exist?("#{report}.progress") ? File.read("#{report}.progress") : ''
      if p != last
        last = p
        last_change = mono_us
      elsif mono_us - last_change > 60_000_000
        raise "stalled at #{last.empty? ? 0 : last} of #{n} jobs (no progress for 60 s)"
      end
    end
  end

  def self.pct(sorted, q)
    return nil if sorted.empty?

    sorted[[[(q * sorted.size).ceil - 1, 0].max, sorted.size - 1].min]
  end

  def self.stop_worker(pid)
    return unless pid

    Process.kill('TERM', pid)
    150.times do
      return unless alive?(pid)

      sleep 0.1
    end
    Process.kill('KILL', pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  def self.parse_args(argv)
    a = { redis_port: 6379, workload: 'drain', jobs: 100_000, rate: 1000.0, duration: 10.0,
          payload_bytes: 100 }
    OptionParser.new do |o|
      o.on('--redis-port P', Integer) { |v| a[:redis_port] = v }
      o.on('--workload W', %w[drain steady]) { |v| a[:workload] = v }
      o.on('--jobs N', Integer) { |v| a[:jobs] = v }
      o.on('--rate R', Float) { |v| a[:rate] = v }
      o.on('--duration S', Float) { |v| a[:duration] = v }
      o.on('--payload-bytes B', Integer) { |v| a[:payload_bytes] = v }
    end.parse!(argv)
    a[:jobs] = (a[:rate] * a[:duration]).round if a[:workload] == 'steady'
    raise 'no jobs to run' if a[:jobs] < 1

    a
  end

  def self.main(argv)
    a = parse_args(argv)
    url = "redis://127.0.0.1:#{a[:redis_port]}/0"
    Sidekiq.configure_client { |config| config.redis = { url: url, size: 1 } }
    redis = Redis.new(url: url)
    tmp = Dir.mktmpdir('forq-peer-sidekiq-')
    report = File.join(tmp, 'report.json')
    log = File.join(tmp, 'worker.log')
    env = { 'BENCH_JOBS' => a[:jobs].to_s, 'BENCH_REPORT' => report,
            'BENCH_WORKLOAD' => a[:workload], 'BENCH_REDIS_PORT' => a[:redis_port].to_s }
    out = { peer: 'sidekiq', version: Sidekiq::VERSION,
            settings: "one sidekiq process, -c #{CONCURRENCY} (threads); log level WARN (no log " \
                      'line per job); no results (Sidekiq keeps none); enqueue: ' \
                      'Sidekiq::Client.push_bulk, 1,000 a call (steady: each tick\'s jobs); ' \
                      "redis-rb #{Redis::VERSION}, ruby #{RUBY_VERSION}",
            workload: a[:workload], jobs: a[:jobs] }
    pid = nil
    start = lambda do
      Process.spawn(env, '/usr/bin/sidekiq', '-r', File.expand_path(__FILE__), '-c', CONCURRENCY.to_s,
                    '-q', QUEUE, '-t', '5', in: File::NULL, out: [log, 'a'], err: [:child, :out])
    end
    enqueue = lambda do |payloads|
      Sidekiq::Client.push_bulk('class' => BenchNoop, 'queue' => QUEUE, 'args' => payloads.map { |p| [p] })
    end
    code = 0
    begin
      redis.flushall
      redis_version = redis.info('server')['redis_version']
      cpu0 = 0.0
      if a[:workload] == 'drain'
        redis0 = redis_cpu_us(redis)
        (0...a[:jobs]).step(1000) do |i|
          enqueue.call((i...[a[:jobs], i + 1000].min).map { |s| payload(s, 0, a[:payload_bytes]) })
        end
        t0 = mono_us
        pid = start.call
        rep = wait_report(report, pid, a[:jobs])
      else
        pid = start.call
        wait_blocked(redis, pid, 30)
        sleep 0.3 # let start-up settle
        redis0 = redis_cpu_us(redis)
        cpu0 = proc_tree_cpu_us(pid)
        t0 = mono_us
        sent = 0
        nxt = t0
        while sent < a[:jobs]
          due = [a[:jobs], ((mono_us - t0) * a[:rate] / 1e6).floor + 1].min
          batch = []
          while sent < due
            batch << payload(sent, mono_us, a[:payload_bytes])
            sent += 1
          end
          enqueue.call(batch) unless batch.empty?
          nxt += 1000
          wait = nxt - mono_us
          if wait.positive?
            sleep(wait / 1e6)
          else
            nxt = mono_us
          end
        end
        rep = wait_report(report, pid, a[:jobs])
      end
      cpu1 = proc_tree_cpu_us(pid)
      redis1 = redis_cpu_us(redis)
      seconds = (rep['done_us'] - t0) / 1e6
      lat = rep['lat_us'].sort
      steady = a[:workload] == 'steady'
      out.merge!(
        jobs_per_s: a[:jobs] / seconds,
        worker_cpu_us_per_job: (cpu1 - cpu0) / a[:jobs],
        redis_cpu_us_per_job: (redis1 - redis0) / a[:jobs],
        pickup_p50_us: steady ? pct(lat, 0.5) : nil,
        pickup_p99_us: steady ? pct(lat, 0.99) : nil,
        completed: rep['distinct'],
        verified: rep['distinct'] == a[:jobs] && rep['dups'].zero? && rep['bad'].zero? && rep['runs'] == a[:jobs],
        duplicates: rep['dups'],
        seconds: seconds,
        startup_s: steady ? nil : (rep['first_us'] - t0) / 1e6,
        startup_cpu_us: steady ? nil : rep['first_cpu_us'],
        redis_version: redis_version
      )
      stop_worker(pid)
      FileUtils.rm_rf(tmp)
    rescue StandardError => e
      stop_worker(pid)
      tail = File.exist?(log) ? File.readlines(log).last(15).join : ''
      warn "sidekiq: #{e.full_message}\nworker log (#{log}):\n#{tail}"
      out.merge!(error: e.message, verified: false)
      code = 1
    end
    puts JSON.generate(out)
    $stdout.flush
    code
  end
end

exit(PeerBench.main(ARGV)) if File.expand_path($PROGRAM_NAME) == File.expand_path(__FILE__)
