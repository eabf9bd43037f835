// The host block cache (csrc/core/host_allocator.cpp): a block that comes back to a
// full cache is kept (the least recently returned ones make room), so a workload
// whose sizes differ from what an earlier one left reuses its memory instead of
// faulting in fresh pages on every call. Reuse is seen through the contents: a fresh
// block is zero pages, a cached one still holds what was written.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/host_allocator.h"
#include "tvops/runtime.h"

namespace {

constexpr std::size_t kMiB = std::size_t(1) << 20;

}  // namespace

TEST(HostAllocator, FullCacheKeepsTheNewestBlock) {
  tvops::release_cached_memory();
  {
    // 3 x 330 MiB fill most of the default 1 GiB limit (never touched: no memory used).
    std::vector<std::shared_ptr<void>> old;
    for (int i = 0; i < 3; ++i) old.push_back(tvops::detail::allocate_host(330 * kMiB));
  }
  // 100 MiB can't reuse a 330 MiB block (more than twice its size) and doesn't fit
  // beside them: an old one must go for it to be kept.
  auto first = tvops::detail::allocate_host(100 * kMiB);
  std::memset(first.get(), 0x5A, 4096);
  first.reset();
  auto second = tvops::detail::allocate_host(100 * kMiB);
  EXPECT_EQ(static_cast<const uint8_t*>(second.get())[4095], 0x5A) << "the returned block was freed, not cached";
  second.reset();
  tvops::release_cached_memory();
}
