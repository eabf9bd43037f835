// The internal thread pool (csrc/core/thread_pool.cpp, compiled into this test
// directly since the library does not export it).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "tvops/runtime.h"

using tvops::detail::parallel_for;

TEST(ParallelFor, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 5}) {
    tvops::set_num_threads(threads);
    for (int64_t n : {0, 1, 7, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(n);
      parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
    }
  }
}

TEST(ParallelFor, UsesSeveralThreadsWhenAsked) {
  tvops::set_num_threads(4);
  std::mutex m;
  std::set<std::thread::id> ids;
  parallel_for(0, 4, 1, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> lock(m);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_GT(ids.size(), 1u);
}

TEST(ParallelFor, NestedCallsRunInline) {
  tvops::set_num_threads(3);
  std::atomic<int64_t> sum{0};
  parallel_for(0, 6, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      parallel_for(0, 100, 1, [&](int64_t a, int64_t b) { sum += b - a; });
  });
  EXPECT_EQ(sum.load(), 600);
}

TEST(ParallelFor, ExceptionsReachTheCaller) {
  tvops::set_num_threads(2);
  EXPECT_THROW(parallel_for(0, 100, 1, [](int64_t lo, int64_t) {
                 if (lo >= 50) throw std::runtime_error("chunk failed");
               }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> n{0};
  parallel_for(0, 100, 1, [&](int64_t lo, int64_t hi) { n += hi - lo; });
  EXPECT_EQ(n.load(), 100);
}

TEST(ParallelFor, ConcurrentCallersShareThePool) {
  tvops::set_num_threads(2);
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int c = 0; c < 6; ++c)
    callers.emplace_back([&] {
      std::atomic<int64_t> s{0};
      parallel_for(0, 10000, 10, [&](int64_t lo, int64_t hi) { s += hi - lo; });
      ok += s.load() == 10000;
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok.load(), 6);
}

TEST(ParallelFor, WorksInAForkedChild) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer runtime's allocator is not fork-safe";
#endif
  if (std::getenv("TVOPS_TEST_EMULATOR"))  // set by tests/CMakeLists.txt for cross builds
    GTEST_SKIP() << "qemu-user aborts when a forked child of a threaded process starts threads";
  tvops::set_num_threads(2);
  std::atomic<int64_t> n{0};
  parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) { n += hi - lo; });  // parent pool exists
  pid_t pid = fork();
  if (pid == 0) {
    std::atomic<int64_t> m{0};
    parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) { m += hi - lo; });
    _exit(m.load() == 1000 ? 0 : 1);
  }
  int status = 0;
  for (int waited = 0; waited < 600 && waitpid(pid, &status, WNOHANG) == 0; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (waitpid(pid, &status, WNOHANG) == 0 && !WIFEXITED(status)) {
    kill(pid, SIGKILL);
    FAIL() << "child hung";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}
