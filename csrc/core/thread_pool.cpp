#include "core/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/check.h"
#include "tvops/runtime.h"

namespace tvops {

namespace {

// One parallel_for call: chunks are claimed with an atomic counter by whichever
// thread gets there first, so a busy worker never holds up the caller.
struct Job {
  int64_t begin, end, chunk, chunks;
  const std::function<void(int64_t, int64_t)>* fn;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;
  std::exception_ptr error;

  // Runs chunks until none are left; returns when this thread has no more to take.
  void work();
};

thread_local bool t_in_parallel_region = false;

void Job::work() {
  const bool outer = t_in_parallel_region;
  t_in_parallel_region = true;
  for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
    const int64_t lo = begin + c * chunk, hi = std::min(end, lo + chunk);
    try {
      (*fn)(lo, hi);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
    }
    if (done.fetch_add(1) + 1 == chunks) {
      std::lock_guard<std::mutex> lock(mutex);
      finished.notify_all();
    }
  }
  t_in_parallel_region = outer;
}

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(const std::shared_ptr<Job>& job, int helpers) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (int i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    if (helpers == 1) wake_.notify_one(); else wake_.notify_all();
    job->work();
    std::unique_lock<std::mutex> lock(job->mutex);
    job->finished.wait(lock, [&] { return job->done.load() == job->chunks; });
  }

 private:
  void loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->work();
    }
  }

  std::vector<std::thread> workers_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
};

int default_threads() {
  if (const char* env = std::getenv("TVOPS_NUM_THREADS"); env && *env) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return cpu_features().logical_cores;
}

// Heap-allocated and never destroyed: no joins during static destruction at exit.
std::mutex& g_pool_mutex = *new std::mutex;
std::shared_ptr<Pool>& g_pool = *new std::shared_ptr<Pool>;
int g_threads = 0;  // 0: not yet decided
bool g_atfork_installed = false;

void after_fork_in_child() {
  // The parent's workers do not exist in the child: abandon the pool without
  // touching it (joining them would hang), and the mutex, which a thread that is
  // gone may hold.
  new (&g_pool_mutex) std::mutex;
  new (&g_pool) std::shared_ptr<Pool>;
}

std::shared_ptr<Pool> pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_atfork_installed) {
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    g_atfork_installed = true;
  }
  if (g_threads == 0) g_threads = default_threads();
  if (!g_pool) g_pool = std::make_shared<Pool>(g_threads);
  return g_pool;
}

}  // namespace

int num_threads() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_threads == 0) g_threads = default_threads();
  return g_threads;
}

void set_num_threads(int n) {
  TVOPS_CHECK(n > 0, Value, "set_num_threads: need at least 1 thread, got ", n);
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (n == g_threads) return;
  g_threads = n;
  // A running call keeps the old pool alive; it is joined when that call ends.
  g_pool.reset();
}

namespace detail {

bool in_parallel_region() { return t_in_parallel_region; }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  const int64_t n = end - begin;
  grain = std::max<int64_t>(grain, 1);
  if (t_in_parallel_region || n <= grain) return fn(begin, end);
  std::shared_ptr<Pool> p = pool();
  const int64_t chunks = std::min<int64_t>(p->size(), (n + grain - 1) / grain);
  if (chunks <= 1) return fn(begin, end);
  auto job = std::make_shared<Job>();
  job->begin = begin;
  job->end = end;
  job->chunk = (n + chunks - 1) / chunks;
  job->chunks = (n + job->chunk - 1) / job->chunk;
  job->fn = &fn;
  p->run(job, static_cast<int>(job->chunks - 1));
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace detail

}  // namespace tvops
