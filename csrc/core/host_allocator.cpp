#include "core/host_allocator.h"

#include <pthread.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/check.h"
#include "tvops/runtime.h"

namespace tvops {

namespace {

constexpr std::size_t kMinCached = std::size_t(4) << 20;
// Large blocks are 2 MiB aligned and asked for as transparent huge pages: a RoI
// touches hundreds of 4 KiB pages of a channels-last map, and the TLB misses cost
// more than the arithmetic.
constexpr std::size_t kHugePage = std::size_t(2) << 20;

void* allocate_block(std::size_t bytes) {
  if (bytes < kMinCached) return std::aligned_alloc(64, bytes);
  void* p = std::aligned_alloc(kHugePage, bytes);
#if defined(MADV_HUGEPAGE)
  if (p) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: failure leaves normal pages
#endif
  return p;
}

struct CachedBlock {
  void* block;
  uint64_t returned;  // when it came back: the least recently returned go first
};

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, CachedBlock> free_blocks;  // capacity -> block
  std::size_t cached_bytes = 0;
  std::size_t limit = 0;
  uint64_t clock = 0;
};

// Never destroyed: blocks may be returned during static destruction.
Cache* g_cache = [] {
  auto* c = new Cache;
  const char* env = std::getenv("TVOPS_HOST_CACHE_MB");
  c->limit = (env && *env ? std::strtoull(env, nullptr, 10) : 1024ull) << 20;
  pthread_atfork(nullptr, nullptr, [] { new (&g_cache->mutex) std::mutex; });
  return c;
}();

// A full cache makes room by freeing its least recently returned blocks: a workload
// whose sizes differ from what an earlier one left behind (a 400 MB output that its
// 124 MB request can't reuse) then gets cached too, instead of faulting in fresh pages
// on every call while stale blocks hold the whole limit.
void release(void* block, std::size_t capacity) {
  if (capacity >= kMinCached && capacity <= g_cache->limit) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(g_cache->mutex);
      auto& blocks = g_cache->free_blocks;
      while (g_cache->cached_bytes + capacity > g_cache->limit) {
        auto oldest = blocks.begin();
        for (auto it = blocks.begin(); it != blocks.end(); ++it)
          if (it->second.returned < oldest->second.returned) oldest = it;
        evicted.push_back(oldest->second.block);
        g_cache->cached_bytes -= oldest->first;
        blocks.erase(oldest);
      }
      blocks.emplace(capacity, CachedBlock{block, ++g_cache->clock});
      g_cache->cached_bytes += capacity;
    }
    for (void* p : evicted) std::free(p);  // outside the lock: munmap takes time
    return;
  }
  std::free(block);
}

}  // namespace

void release_cached_memory() {
  std::lock_guard<std::mutex> lock(g_cache->mutex);
  for (auto& [capacity, cached] : g_cache->free_blocks) std::free(cached.block);
  g_cache->free_blocks.clear();
  g_cache->cached_bytes = 0;
}

namespace detail {

std::shared_ptr<void> allocate_host(std::size_t bytes) {
  // 64-byte alignment: a full AVX-512 vector or cache line.
  std::size_t rounded = bytes ? (bytes + 63) / 64 * 64 : 64;
  if (rounded >= kMinCached) rounded = (rounded + kHugePage - 1) / kHugePage * kHugePage;
  if (rounded >= kMinCached) {
    std::lock_guard<std::mutex> lock(g_cache->mutex);
    auto it = g_cache->free_blocks.lower_bound(rounded);
    if (it != g_cache->free_blocks.end() && it->first / 2 <= rounded) {
      const std::size_t capacity = it->first;
      void* block = it->second.block;
      g_cache->free_blocks.erase(it);
      g_cache->cached_bytes -= capacity;
      return std::shared_ptr<void>(block, [capacity](void* p) { release(p, capacity); });
    }
  }
  void* p = allocate_block(rounded);
  if (!p) {  // memory held in the cache may be what is missing
    release_cached_memory();
    p = allocate_block(rounded);
  }
  TVOPS_CHECK(p != nullptr, Runtime, "out of host memory allocating ", bytes, " bytes");
  return std::shared_ptr<void>(p, [rounded](void* q) { release(q, rounded); });
}

}  // namespace detail

}  // namespace tvops
