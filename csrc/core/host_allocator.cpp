#include "core/host_allocator.h"

#include <pthread.h>
#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>

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

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free_blocks;  // capacity -> block
  std::size_t cached_bytes = 0;
  std::size_t limit = 0;
};

// Never destroyed: blocks may be returned during static destruction.
Cache* g_cache = [] {
  auto* c = new Cache;
  const char* env = std::getenv("TVOPS_HOST_CACHE_MB");
  c->limit = (env && *env ? std::strtoull(env, nullptr, 10) : 1024ull) << 20;
  pthread_atfork(nullptr, nullptr, [] { new (&g_cache->mutex) std::mutex; });
  return c;
}();

void release(void* block, std::size_t capacity) {
  if (capacity >= kMinCached) {
    std::lock_guard<std::mutex> lock(g_cache->mutex);
    if (g_cache->cached_bytes + capacity <= g_cache->limit) {
      g_cache->free_blocks.emplace(capacity, block);
      g_cache->cached_bytes += capacity;
      return;
    }
  }
  std::free(block);
}

}  // namespace

void release_cached_memory() {
  std::lock_guard<std::mutex> lock(g_cache->mutex);
  for (auto& [capacity, block] : g_cache->free_blocks) std::free(block);
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
      void* block = it->second;
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
