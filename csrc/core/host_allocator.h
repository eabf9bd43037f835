// Host memory for tensors (internal). Large blocks are kept after use and handed out
// again: a detection op allocates ~100 MB feature-map copies and outputs per call,
// and touching fresh pages costs more than some kernels (25k page faults per 100 MB).
//  * Blocks of at least 4 MiB are cached, up to TVOPS_HOST_CACHE_MB in all (default
//    1024; 0 turns the cache off); tvops::release_cached_memory() frees them.
//  * A cached block is reused for a request between half its size and its size.
//  * A full cache frees its least recently returned blocks to keep a new one.
//  * Safe from any thread and after fork().
#pragma once

#include <cstddef>
#include <memory>

namespace tvops::detail {

std::shared_ptr<void> allocate_host(std::size_t bytes);

}  // namespace tvops::detail
