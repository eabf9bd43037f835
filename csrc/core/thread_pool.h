// The CPU thread pool (internal). parallel_for splits [begin, end) into chunks of at
// least `grain` items and runs them on the pool's workers and the calling thread.
//  * Size: TVOPS_NUM_THREADS, default all cores; set_num_threads() changes it.
//  * Many threads may call parallel_for at once: they share the same workers, so
//    the machine is never oversubscribed.
//  * Nested calls (from inside a chunk) run inline.
//  * After fork() the child starts with no workers and makes a fresh pool on first
//    use (DataLoader workers).
#pragma once

#include <cstdint>
#include <functional>

namespace tvops::detail {

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// True inside a parallel_for chunk, where a nested parallel_for runs inline: code
// that would split one task over two threads can pick its sequential path instead.
bool in_parallel_region();

}  // namespace tvops::detail
