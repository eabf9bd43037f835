// Threading through the public API. The pool itself (csrc/core/thread_pool.h) is
// internal and hidden in libtvops.so, so these tests drive it the way users do:
// the thread-count setting, ops called from many threads at once, and ops called
// in a fork()ed child (DataLoader workers).
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace {

// Random boxes with heavy overlap, so nms both keeps and suppresses many.
struct Inputs {
  std::vector<double> boxes, scores;
  std::vector<float> boxes_f, scores_f;
};

Inputs random_inputs(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> pos(0, 500), size(5, 120), score(0, 1);
  Inputs in;
  for (int64_t i = 0; i < n; ++i) {
    const double x = pos(rng), y = pos(rng);
    for (double v : {x, y, x + size(rng), y + size(rng)}) in.boxes.push_back(v);
    in.scores.push_back(score(rng));
  }
  in.boxes_f.assign(in.boxes.begin(), in.boxes.end());
  in.scores_f.assign(in.scores.begin(), in.scores.end());
  return in;
}

// nms on float64 (double_precision) or float32 copies of the inputs.
std::vector<int64_t> run_nms(const Inputs& in, double thr, bool double_precision) {
  const int64_t n = static_cast<int64_t>(in.scores.size());
  tvops::Tensor b, s;
  if (double_precision) {
    b = tvops::Tensor::from_blob(const_cast<double*>(in.boxes.data()), {n, 4}, {}, tvops::DType::Float64, {});
    s = tvops::Tensor::from_blob(const_cast<double*>(in.scores.data()), {n}, {}, tvops::DType::Float64, {});
  } else {
    b = tvops::Tensor::from_blob(const_cast<float*>(in.boxes_f.data()), {n, 4}, {}, tvops::DType::Float32, {});
    s = tvops::Tensor::from_blob(const_cast<float*>(in.scores_f.data()), {n}, {}, tvops::DType::Float32, {});
  }
  tvops::Tensor k = tvops::nms(b, s, thr);
  return std::vector<int64_t>(k.data<int64_t>(), k.data<int64_t>() + k.numel());
}

// Restores the thread count a test changes.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(tvops::num_threads()) {}
  ~ThreadCountGuard() { tvops::set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(NumThreads, DefaultIsPositive) { EXPECT_GE(tvops::num_threads(), 1); }

TEST(NumThreads, SetThenGet) {
  ThreadCountGuard guard;
  for (int n : {1, 2, 7, 2, 1}) {
    tvops::set_num_threads(n);
    EXPECT_EQ(tvops::num_threads(), n);
  }
}

TEST(NumThreads, NonPositiveCountsThrowAndChangeNothing) {
  ThreadCountGuard guard;
  tvops::set_num_threads(3);
  for (int n : {0, -1, -64}) {
    try {
      tvops::set_num_threads(n);
      ADD_FAILURE() << "set_num_threads(" << n << ") did not throw";
    } catch (const tvops::Error& e) {
      EXPECT_EQ(e.kind(), tvops::ErrorKind::Value) << e.what();
    }
    EXPECT_EQ(tvops::num_threads(), 3);
  }
}

TEST(NumThreads, ResultsDoNotDependOnTheThreadCount) {
  ThreadCountGuard guard;
  const Inputs in = random_inputs(1500, 11);
  tvops::set_num_threads(1);
  const std::vector<int64_t> one = run_nms(in, 0.5, false);
  for (int n : {2, 7}) {
    tvops::set_num_threads(n);
    EXPECT_EQ(run_nms(in, 0.5, false), one) << n << " threads";
  }
}

TEST(Concurrency, ManyThreadsCallingNmsGetTheSingleThreadedResults) {
  constexpr int kThreads = 8, kRounds = 6;
  struct Work {
    Inputs in;
    double thr;
    bool f64;
    std::vector<int64_t> expected;
  };
  std::vector<Work> work;
  for (int t = 0; t < kThreads; ++t) {
    Work w{random_inputs(300 + 150 * t, 1000 + t), 0.2 + 0.1 * t, t % 2 == 0, {}};
    w.expected = run_nms(w.in, w.thr, w.f64);  // one thread, before the others start
    ASSERT_FALSE(w.expected.empty());
    work.push_back(std::move(w));
  }

  std::atomic<int> ready{0};
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Start together, so the calls really overlap.
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      const Work& w = work[t];
      for (int r = 0; r < kRounds; ++r) {
        try {
          if (run_nms(w.in, w.thr, w.f64) != w.expected) mismatches.fetch_add(1);
        } catch (...) {
          errors.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(errors.load(), 0);
}

// Waits for a child with a deadline; a hung child is killed and reported, so the
// test fails instead of blocking forever. Returns true when the child exited 0.
::testing::AssertionResult child_succeeded(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r == -1) return ::testing::AssertionFailure() << "waitpid failed";
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return ::testing::AssertionFailure() << "child " << pid << " hung for " << limit.count() << " s";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFSIGNALED(status)) return ::testing::AssertionFailure() << "child died of signal " << WTERMSIG(status);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return ::testing::AssertionFailure() << "child exit status " << WEXITSTATUS(status);
  return ::testing::AssertionSuccess();
}

// In the child: 0 when nms gives `expected` (also after changing the thread count),
// 1 on a wrong result, 2 on an exception. Only _exit: no gtest or atexit code runs.
[[noreturn]] void child_main(const Inputs& in, double thr, const std::vector<int64_t>& expected) {
  int code = 0;
  try {
    if (run_nms(in, thr, false) != expected) code = 1;
    tvops::set_num_threads(3);
    if (tvops::num_threads() != 3 || run_nms(in, thr, false) != expected) code = 1;
  } catch (...) {
    code = 2;
  }
  _exit(code);
}

TEST(Fork, NmsWorksInAForkedChild) {
  ThreadCountGuard guard;
  const Inputs in = random_inputs(1000, 42);
  const std::vector<int64_t> expected = run_nms(in, 0.5, false);  // the parent uses tvops first
  const pid_t pid = fork();
  ASSERT_NE(pid, -1) << "fork failed";
  if (pid == 0) child_main(in, 0.5, expected);
  EXPECT_TRUE(child_succeeded(pid, std::chrono::seconds(120)));
  EXPECT_EQ(run_nms(in, 0.5, false), expected);  // the parent is unaffected
}

// GCC's and older Clang's sanitizer allocators do not lock themselves around
// fork(): a child forked while another thread allocates can block forever in malloc.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TVOPS_SANITIZER_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TVOPS_SANITIZER_ALLOCATOR 1
#endif
#endif

TEST(Fork, ForkWhileOtherThreadsRunNms) {
#if defined(TVOPS_SANITIZER_ALLOCATOR)
  GTEST_SKIP() << "the sanitizer's allocator is not fork-safe with running threads";
#endif
  const Inputs in = random_inputs(600, 7);
  const std::vector<int64_t> expected = run_nms(in, 0.4, false);
  std::atomic<bool> stop{false};
  std::atomic<int> mismatches{0};
  std::vector<std::thread> busy;
  for (int t = 0; t < 2; ++t)
    busy.emplace_back([&] {
      while (!stop.load())
        if (run_nms(in, 0.4, false) != expected) mismatches.fetch_add(1);
    });
  for (int i = 0; i < 3; ++i) {
    const pid_t pid = fork();
    if (pid == 0) child_main(in, 0.4, expected);
    if (pid == -1) {
      ADD_FAILURE() << "fork failed";
      break;
    }
    EXPECT_TRUE(child_succeeded(pid, std::chrono::seconds(120))) << "fork " << i;
  }
  stop = true;
  for (auto& th : busy) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
