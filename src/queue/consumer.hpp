#pragma once

// The consumer side of forq's native protocol (docs/protocol.md): fetch, run handlers, ack in
// batches, retry with backoff, dead set, lease renewal and stall recovery, pause, rate limits,
// slots shared between queues by weight, tidying.

#include "forq/queue/producer.hpp"
#include "gate.hpp"
#include "queue/history.hpp"
#include "queue/job.hpp"
#include "redis/pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>

namespace forq::queue {

// Several consumers of one process sharing `total` slots by weight (one per queue, as forq
// serve runs them). Work-conserving: a queue may use slots the others leave idle; while several
// queues have work waiting, each gets its weighted share as slots free up (running attempts are
// never interrupted). Single-threaded, like the consumers.
class slot_share {
 public:
  explicit slot_share(std::size_t total)
      : total_(total) {}
  std::size_t total() const { return total_; }

  // For consumers: join once; wake is cancelled whenever the member may have room.
  std::size_t join(double weight, boost::asio::steady_timer& wake);
  std::size_t room(std::size_t me) const; // slots `me` may fill now
  void started(std::size_t me) { ++members_[me].used; }
  // Slots held for a fetch in flight, so others do not take them meanwhile.
  void reserve(std::size_t me, std::size_t n) { members_[me].reserved += n; }
  void release(std::size_t me, std::size_t n);
  void finished(std::size_t me);
  void hungry(std::size_t me, bool h); // has work waiting (or not) beyond what it runs

 private:
  struct member {
    double weight;
    boost::asio::steady_timer* wake;
    std::size_t used = 0, reserved = 0;
    bool hungry = false;
  };
  void wake_others(std::size_t me);
  std::size_t total_;
  std::vector<member> members_;
};

struct consumer_options {
  std::string queue = "default";
  std::string name;                    // consumer name in the group; empty: <host>:<pid>
  std::size_t blocking_connection = 0; // the pool's blocking connection this one waits on
  // Shared with the consumers of other queues (concurrency is then the share's total, split by
  // weight). Null: this consumer has `concurrency` slots to itself.
  std::shared_ptr<slot_share> share;
  double weight = 1;
  std::size_t concurrency = 64; // attempts running at once
  // Runs the jobs that name no handler; empty: such jobs are dead, saying so.
  std::string default_handler;
  // One fetch's wait inside Redis for jobs. An idle queue costs one XREADGROUP per consumer per
  // wait; stop() ends a wait at once (CLIENT UNBLOCK), and a silent server is noticed on the
  // command connection (redis::pool), so a long wait delays neither.
  std::chrono::milliseconds block{30000};
  retry_policy retry; // the queue's; a job's `retry` and `max_attempts` fields go over it
  std::chrono::milliseconds keep_results{std::chrono::hours(1)};
  std::size_t max_results = 10000;
  // A fetched job is leased for this long, and the lease is renewed every third of it while the
  // attempt runs. A lease that expires (the process died, or its loop stalled) lets any
  // consumer take the job back; more than max_stalls such recoveries and the job is dead.
  std::chrono::milliseconds lease{30000};
  int max_stalls = 3;
  // An attempt still running this long after it started is cancelled (context::deadline; the
  // handler's awaits end with operation_aborted) and retried per policy, unless it then
  // returns a success. Zero: no limit (handlers with timeouts of their own, exec and http,
  // keep theirs; the shorter wins).
  std::chrono::milliseconds attempt_timeout{0};
  // While attempts run, how often the consumer reads their cancel marks (one HMGET for all of
  // them; docs/job-control.md): a running job hears a cancel within this, on any host.
  std::chrono::milliseconds cancel_check_every{500};
  // A consumer that settled jobs tidies (tidy.lua: evicts results, trims the streams it
  // settled entries on) at most this often; results are also evicted when the oldest is due.
  std::chrono::milliseconds tidy_every{1000};
  // How often a busy consumer looks whether its queue was paused.
  std::chrono::milliseconds pause_check_every{250};
  // A paused queue's consumer waits inside Redis for its doorbell (the wake stream, which
  // forq's resume, pause and limit ring) and looks at the queue again at the latest after this
  // long (a resume written by a tool that does not ring).
  std::chrono::milliseconds paused_wait{10000};
  // Whether this consumer keeps the queue while nothing happens (docs/protocol.md, "Upkeep"):
  // the keeper makes the fallback looks below even when idle. forq serve has one keeper per
  // queue per host (the workers claim the role in the master's shared memory), so idle queues
  // cost Redis little however many workers run. A consumer that is not the keeper still
  // promotes on doorbells and its own retries, tidies what it settled, and looks for stalled
  // jobs while it holds some. Asked every few seconds (the role moves when its holder dies);
  // empty: always the keeper.
  std::function<bool()> keeper;
  // Gives the keeper role up (stop() calls it, so a draining worker's queues are kept by another
  // at once, not when it exits). Empty: nothing to give up.
  std::function<void()> release_keeper;
  // Due delayed jobs and retries are promoted on time: a producer's doorbell (the `wake`
  // stream) or this consumer's own retry sets the promoter's timer. This is the keeper's
  // fallback look, for doorbells another consumer answered and then died.
  std::chrono::milliseconds promote_check_every{5000};
  // The queue's schedules (docs/schedules.md): the keeper calls this with the command
  // connection and the longest wait, and waits what it answers before calling again (every
  // schedule_check_every at most: a schedule added or changed is seen within it). The worker
  // sets it (schedule::tick); empty: this consumer runs no schedules.
  std::function<boost::asio::awaitable<std::chrono::milliseconds>(redis::connection&,
                                                                  std::chrono::milliseconds)>
      schedules;
  std::chrono::milliseconds schedule_check_every{5000}; // schedule::look_every
  // The keeper's look at every stream of the queue: a tidy of all ten, and stall recovery on
  // all ten, not only on the priorities consumers have said they fetch from.
  std::chrono::milliseconds full_upkeep_every{std::chrono::minutes(5)};
};

// One keeper per queue among the processes that share `holder` (a pid in shared memory; 0:
// nobody): true when the caller holds the role, or takes it because nobody does or because its
// holder has exited.
bool claim_keeper(std::atomic<std::int32_t>& holder);
// Gives it up, if this process holds it.
void release_keeper(std::atomic<std::int32_t>& holder);

// Consumes one queue through a pool: blocking fetches on its own blocking connection
// (options.blocking_connection), everything else on pool.commands(). Single-threaded, like the
// pool.
struct fetch_view; // src/queue/fetch_plan.hpp

class consumer {
 public:
  consumer(redis::pool& pool, consumer_options options, handler_map handlers);
  ~consumer();

  // Starts the queue (start_queue: waits for Redis as long as it takes), then consumes until
  // stop(); completes once every attempt in flight has finished and been acknowledged or
  // failed. Completes early with start_queue's fatal errors (queue_schema_mismatch,
  // redis_refused, invalid_job).
  boost::asio::awaitable<boost::system::error_code> run();
  // Stop fetching; attempts in flight finish. run() completes after them.
  // The queue's keeper role is free (its holder stopped or exited): the schedules' look asks
  // for it now instead of at its next look (a slot a second late may be skipped).
  void keeper_vacant();
  void stop();
  // For a process about to exit (the drain timed out): hands every attempt still running back
  // to its queue at once (handback.lua), without waiting for a lease to expire, and records
  // none of their outcomes from then on. Attempts finished but not yet acknowledged are kept
  // (their ack goes on). Their handlers are cancelled (context::cancelled). Returns how many
  // were handed back.
  boost::asio::awaitable<std::size_t> release_running();
  // Completes once every outcome recorded so far is acknowledged in Redis (true), or at
  // `until` (false): what a leaving process waits for before it closes its connections.
  boost::asio::awaitable<bool> acks_sent(std::chrono::steady_clock::time_point until);

  // Durations in fixed buckets (upper bounds in seconds; the last counts everything above).
  struct histogram {
    static constexpr std::array<double, 11> bounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,   1,    5,     30};
    std::array<std::uint64_t, 12> counts{};
    std::uint64_t sum_us = 0;
    void add(std::chrono::microseconds d);
  };
  struct counters {
    std::uint64_t fetched = 0, done = 0, retried = 0, dead = 0, recovered = 0, handed_back = 0,
                  cancelled = 0;
    histogram pickup;     // from the attempt's entry reaching its stream to the attempt's start
    histogram run;        // the handler's own time
    histogram round_trip; // an ack's round trip to Redis
    history::buckets pickup_fine{}; // pick-up latency in the dashboard's finer buckets
  };
  const counters& stats() const { return stats_; }
  std::size_t running() const { return running_; } // attempts running now
  // The attempts running now, oldest first, at most `most` of them: each job's id and when its
  // attempt started (ms since the epoch), for the worker's presence (the dashboard's Workers).
  struct running_job {
    std::string id;
    std::int64_t started_ms = 0;
  };
  std::vector<running_job> running_jobs(std::size_t most) const;
  // Redis refused this consumer's last write (-OOM, -READONLY, -MISCONF) and has not accepted
  // one since: the worker is not ready (/readyz).
  bool refusing_writes() const { return refusals_.active(); }
  // The queue is started (start_queue done): it consumes.
  bool started() const { return started_; }
  const std::string& queue() const { return options_.queue; }

 private:
  struct finished {
    std::string stream, entry_id, id, record; // record: results:data's value (JSON)
    bool progress = false;                    // it reported progress: clear it
    bool waitable = false;                    // its end is announced (the finished stream)
  };

  boost::asio::awaitable<void> fetch_loop();
  fetch_view fetch_now() const; // what plan_fetch decides from (src/queue/fetch_plan.hpp)
  // One read of the queue as plan_read says; false: the connection stopped for good.
  boost::asio::awaitable<bool> read_jobs();
  // read_jobs's steps: the XREADGROUP over every priority's stream and the doorbell; and what
  // becomes of the jobs it brought (kept, handed back, or held back by a pause).
  redis::request read_request(std::size_t count, bool block) const;
  boost::asio::awaitable<void> settle_fetched(std::vector<delivered_job> got, std::size_t allowed,
                                              std::chrono::steady_clock::time_point asked);
  boost::asio::awaitable<boost::system::result<redis::reply>> fetch_exactly(std::size_t n_streams,
                                                                            std::size_t count);
  class attempt_context;
  boost::asio::awaitable<void> attempt(delivered_job job, attempt_context& ctx);
  // Writes the progress reported since the last write (one HSET for all attempts, at most
  // every 100 ms), and the events noted (at once).
  boost::asio::awaitable<void> progress_loop();
  // Cancels the attempts whose deadline passed (attempt_timeout), on one timer.
  boost::asio::awaitable<void> deadline_loop();
  // Tells the attempts whose job was cancelled (a mark in `cancel`): one HMGET of the running
  // jobs' marks every cancel_check_every while any runs, nothing while none does.
  boost::asio::awaitable<void> cancel_loop();
  // The queue's events (docs/job-control.md, "Events"), while meta's `events` turns them on:
  // note_event buffers one (an XADD of `event <name> id <job id>` and `fields`); the buffer goes
  // out with the next write that concerns its jobs (in front of an ack, progress, a failure),
  // or on its own from progress_loop, at once. take_events moves it into `req` and says how many.
  void note_event(std::string_view name, std::string_view id,
                  std::initializer_list<std::string_view> fields = {});
  std::size_t take_events(redis::request& req);
  void note_started(const delivered_job& job);
  void note_completed(const delivered_job& job, const std::string& result);
  boost::asio::awaitable<void> send_events();
  boost::asio::awaitable<void> ack_loop();
  // ack_loop's steps: one batch's request (results, their index, XACKs, counts, and WAIT with
  // redis.durability), and what an acknowledged batch settles.
  redis::request ack_request(const std::vector<finished>& batch) const;
  void acked(const std::vector<finished>& batch, const redis::connection::response& r);
  boost::asio::awaitable<void> promote_loop();
  // The keeper runs the queue's schedules' due slots (src/schedule/schedule.hpp).
  boost::asio::awaitable<void> schedule_loop();
  boost::asio::awaitable<void> tidy_loop();
  // After stop(): ends the fetch's wait inside Redis (CLIENT UNBLOCK from the command
  // connection), or drops the blocking connection when that cannot be done within a second.
  boost::asio::awaitable<void> unblock_loop();
  // Evicts results and trims the streams jobs were settled on since the last call (every
  // stream with `all`).
  boost::asio::awaitable<void> tidy(bool all = false);
  void settled(const std::string& stream); // entries of `stream` were acked: trim it soon
  // Reads the queue's paused flag and rate limit (forq:{Q}:meta); returns paused.
  boost::asio::awaitable<bool> refresh_paused();
  // Paused: look again, and while still paused wait inside Redis for the doorbell (at most
  // paused_wait).
  boost::asio::awaitable<void> wait_for_resume();
  std::size_t room() const; // slots this consumer may fill now
  // Permits of the queue's rate limit for up to `want` jobs (all of them when unlimited), or
  // how long until there are some.
  boost::asio::awaitable<std::pair<std::size_t, std::chrono::milliseconds>>
  permits(std::size_t want);
  boost::asio::awaitable<void> give_back(std::size_t unused);
  boost::asio::awaitable<boost::system::result<redis::reply>> rate_call(std::string_view op,
                                                                        std::size_t n);
  boost::asio::awaitable<void> hand_back(std::vector<delivered_job> jobs);
  void start(delivered_job job);
  // A fetch's reply as jobs (malformed entries go dead on the way); notes mixed priorities.
  boost::asio::awaitable<std::vector<delivered_job>> take(const redis::reply& answer);
  void keep(std::vector<delivered_job> got); // into waiting_, by priority, leased
  // Every third of a lease, counted from when the last renewal was sent: renew_leases. On its
  // own timer, so neither a slow round trip nor a stall look (stall_loop) delays a renewal.
  boost::asio::awaitable<void> renew_loop();
  boost::asio::awaitable<void> renew_leases();
  // The stall look (recover_stalled), every third of a lease, or within a second of a lease
  // about to run out.
  boost::asio::awaitable<void> stall_loop();
  // Takes back the jobs whose lease ran out; true when a lease will run out before a third of a
  // lease from now (then the next look comes within a second).
  boost::asio::awaitable<bool> recover_stalled(bool all);
  // recover_stalled's steps: the priorities whose streams it reads (all ten, or those in use),
  // and what it does with the entries it claimed (each with its stream): run again, bury, or
  // give up after max_stalls.
  boost::asio::awaitable<std::array<bool, 10>> stall_look_priorities(bool all);
  boost::asio::awaitable<void>
  rerun_stalled(const std::vector<std::pair<std::string, const redis::reply*>>& found);
  // Once per priority per process (and again after a heal): adds it to the queue's set of
  // priorities fetched from, before any of its jobs runs, so stall recovery looks there.
  boost::asio::awaitable<void> note_priorities(const std::vector<delivered_job>& got);
  boost::asio::awaitable<void> bury_malformed(const std::string& stream, int priority,
                                              const redis::reply& entry, const std::string& why);
  // Records a failed attempt (fail.lua): a retry, dead, or with `cancelled`, cancelled. A job
  // with a cancel mark ends cancelled whatever was asked.
  boost::asio::awaitable<void> fail(const delivered_job& job, int attempt_made, bool permanent,
                                    const std::string& error,
                                    std::optional<std::chrono::milliseconds> retry_after,
                                    bool cancelled = false);
  // What every loop does with an error reply of Redis: the queue's keys gone (NOGROUP, a
  // missing schema) -> restore them at once; writes refused -> say so once and back off; else
  // log `doing` with the reply and wait a second (waits only with `pace`). Completes when the
  // loop may try again.
  boost::asio::awaitable<void> on_error_reply(std::string_view doing, const redis::reply& r,
                                              bool pace = true);
  boost::asio::awaitable<void> heal(); // restore_queue, once at a time in this consumer
  void write_accepted();               // a write went through: a refusal spell is over

  redis::pool& pool_;
  consumer_options options_;
  handler_map handlers_;
  std::string name_;
  std::vector<std::string> stream_names_; // priority 9 to 0, then the doorbell (fetch_loop)
  std::mt19937_64 rng_;
  std::size_t running_ = 0;

  // One attempt's context (forq/queue/handler.hpp): its cancellation signal (the attempt's
  // coroutine is bound to it), its progress, and its place in running_list_. Pooled: reused
  // once its attempt's coroutine is gone, so a job costs no allocation for it.
  class attempt_context final : public context,
                                public boost::intrusive::list_base_hook<
                                    boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
   public:
    explicit attempt_context(consumer& owner);
    boost::asio::awaitable<void> until_cancelled() override;
    expected<> progress(std::string_view json) override;
    boost::asio::awaitable<expected<enqueue_result>> enqueue(std::string_view queue,
                                                             const new_job& j) override;
    // Ready for `job`'s attempt, started now.
    void begin(const delivered_job& job);
    // Tells the handler to stop (once; only while it runs).
    void cancel(std::string reason);

    consumer* owner = nullptr; // null once its consumer is gone
    const delivered_job* job = nullptr;
    std::int64_t started_ms = 0;
    std::chrono::steady_clock::time_point due = std::chrono::steady_clock::time_point::max();
    bool in_handler = false;
    bool timed_out = false;
    bool by_mark = false; // told of a cancel mark: ends cancelled whatever it returns
    boost::asio::cancellation_signal signal;
    boost::asio::steady_timer bell; // cancelled on cancel: until_cancelled
    std::string progress_value;     // reported, not written yet (progress_dirty)
    bool progress_dirty = false, progress_reported = false;
  };

  // The contexts: owned here, and by each attempt's completion (the last to let go frees them,
  // so a consumer may go while an attempt's coroutine finishes).
  struct context_pool {
    std::vector<std::unique_ptr<attempt_context>> all;
    std::vector<attempt_context*> spare;
  };
  std::shared_ptr<context_pool> contexts_ = std::make_shared<context_pool>();
  // The attempts running now, oldest first (each links itself as it starts).
  boost::intrusive::list<attempt_context, boost::intrusive::constant_time_size<false>>
      running_list_;
  std::size_t progress_pending_ = 0; // attempts with progress_dirty
  std::chrono::steady_clock::time_point progress_written_{};
  bool stopping_ = false;
  bool fetching_done_ = false;
  bool paused_ = false;
  std::int64_t rate_max_ = 0, rate_ms_ = 0; // the queue's rate limit; 0: none
  // The events stream's MAXLEN while meta's `events` turns them on (0: off), as last read (by
  // refresh_paused, and every cancel_check_every while attempts run); what waits to be written.
  std::int64_t events_max_ = 0;
  redis::request events_out_;
  std::string events_key_;                                       // forq:{Q}:events, once
  std::pair<std::int64_t, std::string> events_max_text_{0, "0"}; // events_max_ as text
  std::string rate_window_; // the window the last permits came from
  std::size_t member_ = 0;  // in options_.share
  bool last_full_ = false;  // the last fetch got all it asked for: more is likely waiting
  bool idle_ = false;       // the last wait inside Redis brought nothing (no pause look since)
  bool waiting_in_redis_ = false; // a blocking fetch is in flight
  std::chrono::steady_clock::time_point paused_checked_{};
  // Priorities in use at once: fetch exactly by priority (fetch.lua) until this time.
  std::chrono::steady_clock::time_point exact_until_{};
  std::deque<delivered_job> waiting_; // fetched, not started: highest priority first
  std::deque<finished> to_ack_;
  gate acks_; // one per job from its outcome until its ack is answered (acks_sent)
  // Stopped, fetching over, no attempt left: every loop ends.
  bool wound_down() const { return stopping_ && fetching_done_ && running_ == 0; }
  std::size_t acked_since_tidy_ = 0;
  std::set<std::string> settled_streams_; // entries settled since the last tidy
  // When the oldest result kept is due for eviction (tidy.lua says); max: none, or not known.
  std::chrono::steady_clock::time_point evict_at_ = std::chrono::steady_clock::time_point::max();
  bool evicting_ = false; // the last tidy said "more now": calls go back to back
  std::chrono::steady_clock::time_point trimmed_at_{}; // the streams' last trim
  std::array<bool, 10> noted_priorities_{}; // in the queue's `priorities` set (this process)
  std::array<bool, 10> priorities_seen_{};  // the set as stall recovery last read it...
  std::optional<std::chrono::steady_clock::time_point> priorities_read_; // ...and when
  bool keeper() const { return !options_.keeper || options_.keeper(); }
  // stream -> entry ids attempted here whose outcome is not recorded yet (leases renewed)
  std::map<std::string, std::set<std::string>> active_;
  std::map<std::string, std::string> cursors_; // stream -> where stall recovery goes on
  std::set<std::string> released_;             // entry ids handed back by release_running()
  refusal_spell refusals_;
  bool healing_ = false;
  bool acks_unconfirmed_ = false;   // redis.durability: the last acks lacked replicas (said once)
  std::string last_error_;          // the last unexpected error reply, said once...
  std::uint64_t error_repeats_ = 0; // ...and again every 60th time it repeats
  bool started_ = false;
  // cancel() = something changed: a slot freed, an ack is due, a retry was scheduled, stop.
  boost::asio::steady_timer slot_free_, ack_due_, promote_due_, lease_due_, renew_due_, tidy_due_,
      unblock_due_, schedule_due_, progress_due_, deadline_due_, cancel_due_;
  bool cancel_idle_ = false;  // cancel_loop waits for an attempt to start
  bool cancel_awake_ = false; // cancel_loop looks again after its period
  counters stats_;
};

} // namespace forq::queue
