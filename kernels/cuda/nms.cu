// CUDA nms and batched_nms, exact to torchvision's CUDA kernels: the same IoU
// arithmetic (devIoU, the threshold compared as float), the same kept boxes in the
// same order (score, then index). Everything runs on the caller's stream; the host
// waits once, to size the output.
//
// After a radix sort by score, one of two paths builds "who suppresses whom":
//  * grid (threshold >= 0, the usual case). IoU > t forces the centres close (the
//    argument is in kernels/cpu/nms.cpp), so each box tests only the later boxes whose
//    centres lie in grid cells within its reach. Pairs above the threshold become a
//    short list per box, plus one bitmask word for the pairs inside its own block of 64.
//    Work and memory grow with n times the neighbours, not n^2: at 100k random boxes
//    the dense mask would be 5e9 IoUs and 625 MB.
//  * dense (negative or NaN thresholds, or more overlapping pairs than the lists hold):
//    a 64x64-tiled IoU bitmask over the upper triangle.
// Then one warp (grid) or one block (dense) sweeps the boxes in score order, 64 at a
// time, keeping a `removed` bitmap in shared memory.
//
// batched_nms follows torchvision's two strategies: up to 100k coordinates it shifts
// each category by idx * (max coordinate + 1) and runs one nms (IoUs on the shifted
// boxes, as torchvision computes them); above, per-category nms on the original
// coordinates (here: one pass where only boxes of equal category interact; categories
// sit side by side in the grid). Boxes whose category is NaN are dropped there.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/cuda_backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace tvops::cuda {

namespace {

constexpr int kBitsPerWord = 64;
// torchvision's batched_nms uses the coordinate trick up to this many coordinates on CUDA.
constexpr int64_t kOffsetTrickMaxNumel = 100000;
// List entries the grid path reserves per box before falling back to the dense mask
// (random boxes at t = 0.5: ~5 per box at 20k, ~25 at 100k).
constexpr int64_t kListSlotsPerBox = 64;

// The boxes' data on the device in score order, and which category each has (null: one).
template <typename T>
struct Sorted {
  const T* boxes;     // [n, 4]
  const double* cls;  // [n] or null
  int64_t n;
};

template <typename T>
__device__ inline bool iou_above(const T* a, const T* b, float threshold) {
  T left = max(a[0], b[0]), right = min(a[2], b[2]);
  T top = max(a[1], b[1]), bottom = min(a[3], b[3]);
  T width = max(right - left, T(0)), height = max(bottom - top, T(0));
  T inter = width * height;
  T area_a = (a[2] - a[0]) * (a[3] - a[1]);
  T area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return inter / (area_a + area_b - inter) > threshold;
}

__device__ inline bool same_class(const double* cls, int64_t i, int64_t j) { return !cls || cls[i] == cls[j]; }

// ---- Sorting -------------------------------------------------------------------------

// Sort keys: NaN -> canonical +NaN (sorts first descending, like torch), -0 -> +0
// (ties with +0 keep index order, since the radix sort is stable).
template <typename T>
__global__ void prepare_keys(const T* scores, T* keys, int64_t* index, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T s = scores[i];
    keys[i] = isnan(s) ? T(NAN) : (s == T(0) ? T(0) : s);
    index[i] = i;
  }
}

// Boxes (and categories, as double) in score order.
template <typename T, typename C>
__global__ void gather_sorted(const T* boxes, const C* idxs, const int64_t* order, T* sorted, double* cls,
                              int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t src = order[i];
    for (int c = 0; c < 4; ++c) sorted[4 * i + c] = boxes[4 * src + c];
    if (idxs) cls[i] = static_cast<double>(idxs[src]);
  }
}

// ---- torchvision's coordinate trick ----------------------------------------------------

// max over all coordinates, NaN if any is NaN (torch.max), in one block.
template <typename T>
__global__ void max_coordinate(const T* boxes, int64_t count, T* out) {
  __shared__ T part[1024];
  __shared__ int nan_seen;
  if (threadIdx.x == 0) nan_seen = 0;
  __syncthreads();
  T m = T(-INFINITY);
  bool nan = false;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const T v = boxes[i];
    nan |= isnan(v);
    m = v > m ? v : m;
  }
  if (nan) nan_seen = 1;
  part[threadIdx.x] = m;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s && part[threadIdx.x + s] > part[threadIdx.x]) part[threadIdx.x] = part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = nan_seen ? T(NAN) : part[0];
}

// Correctly rounded operations the compiler may not fuse into an FMA (torch runs the
// multiply and the add of the coordinate trick as separate kernels).
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add_rn(double a, double b) { return __dadd_rn(a, b); }

// boxes + idxs.to(boxes) * (max + 1), in T as torchvision computes it.
template <typename T, typename C>
__global__ void offset_boxes(const T* boxes, const C* idxs, const T* max_coord, T* out, int64_t n) {
  const T step = add_rn(*max_coord, T(1));
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T offset = mul_rn(static_cast<T>(idxs[i]), step);
    for (int c = 0; c < 4; ++c) out[4 * i + c] = add_rn(boxes[4 * i + c], offset);
  }
}

// ---- Grid path ------------------------------------------------------------------------

struct GridBox {
  double cx, cy, rx, ry;  // centre (categories shifted apart along x) and reach; rx < 0: never interacts
};

struct GridParams {
  double min_x, min_y, cell_w, cell_h;
  long long gx, gy;
};

// Block-wide reduction (blockDim.x == kReduceThreads); every thread gets the result.
constexpr int kReduceThreads = 256, kMaxPartials = 256;
enum class Op { Sum, Min, Max };

__device__ double block_reduce(double v, Op op) {
  __shared__ double part[kReduceThreads];
  part[threadIdx.x] = v;
  __syncthreads();
  for (int s = kReduceThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) {
      const double a = part[threadIdx.x], b = part[threadIdx.x + s];
      part[threadIdx.x] = op == Op::Sum ? a + b : op == Op::Min ? fmin(a, b) : fmax(a, b);
    }
    __syncthreads();
  }
  const double r = part[0];
  __syncthreads();
  return r;
}

// Per-block partial results, then one reduction of the partials (by whoever needs it).
struct Extent {  // over the boxes that interact
  double max_w, max_h, lo, hi, count;
};
struct Spread {  // of their (shifted) centres and reaches
  double min_x, max_x, min_y, max_y, sum_rx, sum_ry;
};

__device__ Extent reduce_extents(const Extent* part, int parts) {
  Extent e{0, 0, INFINITY, -INFINITY, 0};
  for (int k = threadIdx.x; k < parts; k += kReduceThreads) {
    e.max_w = fmax(e.max_w, part[k].max_w), e.max_h = fmax(e.max_h, part[k].max_h);
    e.lo = fmin(e.lo, part[k].lo), e.hi = fmax(e.hi, part[k].hi), e.count += part[k].count;
  }
  return Extent{block_reduce(e.max_w, Op::Max), block_reduce(e.max_h, Op::Max), block_reduce(e.lo, Op::Min),
                block_reduce(e.hi, Op::Max), block_reduce(e.count, Op::Sum)};
}

__device__ long long cells_along(double lo, double hi, double mean_r, long long max_cells, double* width) {
  // Cells half a mean reach wide: a query spans ~5x5 cells and tests fewer far boxes.
  double w = fmax(0.5 * mean_r, (hi - lo) / double(max_cells));
  const double cells = (hi - lo) / w;
  if (!isfinite(w) || !(w > 0) || !isfinite(cells)) {
    *width = 1;
    return 1;
  }
  *width = w;
  const long long c = static_cast<long long>(cells) + 1;
  return c < max_cells ? c : max_cells;
}

__device__ inline long long cell_of(double v, double origin, double width, long long cells) {
  const double c = floor((v - origin) / width);
  return !(c > 0) ? 0 : c >= double(cells) ? cells - 1 : static_cast<long long>(c);
}

// 1. Which boxes interact (gb[i].rx = 0, else -1) and their extent. Boxes with a NaN
//    category are marked in `dropped` (per-category mode only).
template <typename T>
__global__ void grid_extent(Sorted<T> s, GridBox* gb, unsigned long long* dropped, Extent* part) {
  Extent e{0, 0, INFINITY, -INFINITY, 0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x) {
    const T* b = s.boxes + 4 * i;
    const T w = b[2] - b[0], h = b[3] - b[1], a = w * h;
    const bool nan_class = s.cls && isnan(s.cls[i]);
    if (nan_class) atomicOr(&dropped[i / kBitsPerWord], 1ull << (i % kBitsPerWord));
    const bool interacts = w > T(0) && h > T(0) && a > T(0) && isfinite(a) && !nan_class;
    gb[i].rx = interacts ? 0 : -1;
    if (!interacts) continue;
    e.max_w = fmax(e.max_w, double(w)), e.max_h = fmax(e.max_h, double(h));
    e.lo = fmin(e.lo, double(b[0])), e.hi = fmax(e.hi, double(b[2])), e.count += 1;
  }
  e = Extent{block_reduce(e.max_w, Op::Max), block_reduce(e.max_h, Op::Max), block_reduce(e.lo, Op::Min),
             block_reduce(e.hi, Op::Max), block_reduce(e.count, Op::Sum)};
  if (threadIdx.x == 0) part[blockIdx.x] = e;
}

// 2. Centres and reach (the CPU grid's radius, kernels/cpu/nms.cpp). Categories sit side
//    by side along x, one span plus a box width apart: only a placement, pairs of
//    different categories are rejected by the category test.
template <typename T>
__global__ void grid_centres(Sorted<T> s, double threshold, const Extent* extent_part, int parts, GridBox* gb,
                             Spread* part) {
  const Extent e = reduce_extents(extent_part, parts);
  double step = (e.hi - e.lo) + e.max_w + 1;
  if (!isfinite(step)) step = 0;
  // Computed IoU can exceed the true one by a few ulps: loosen t. Thresholds >= 1
  // still search a small radius.
  const double t = threshold * (1 - 1e-5);
  const double reach = t > 0 ? fmax(fmax(1 - t, 1 / (2 * t) - 0.5), 1e-3) : INFINITY;
  Spread sp{INFINITY, -INFINITY, INFINITY, -INFINITY, 0, 0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x) {
    if (gb[i].rx < 0) continue;
    const T* b = s.boxes + 4 * i;
    const double w = double(b[2]) - double(b[0]), h = double(b[3]) - double(b[1]);
    GridBox g;
    g.cx = 0.5 * double(b[0]) + 0.5 * double(b[2]) + (s.cls ? s.cls[i] * step : 0.0);
    g.cy = 0.5 * double(b[1]) + 0.5 * double(b[3]);
    g.rx = fmin(w * reach, 0.5 * w + 0.5 * e.max_w);
    g.ry = fmin(h * reach, 0.5 * h + 0.5 * e.max_h);
    g.rx += 1e-6 * (g.rx + fabs(g.cx));  // slack for rounding in the centres
    g.ry += 1e-6 * (g.ry + fabs(g.cy));
    if (!isfinite(g.cx) || !isfinite(g.rx)) g.cx = 0, g.rx = INFINITY;  // huge shifts: search every cell
    gb[i] = g;
    sp.min_x = fmin(sp.min_x, g.cx), sp.max_x = fmax(sp.max_x, g.cx);
    sp.min_y = fmin(sp.min_y, g.cy), sp.max_y = fmax(sp.max_y, g.cy);
    sp.sum_rx += isfinite(g.rx) ? g.rx : 0;
    sp.sum_ry += g.ry;
  }
  sp = Spread{block_reduce(sp.min_x, Op::Min), block_reduce(sp.max_x, Op::Max), block_reduce(sp.min_y, Op::Min),
              block_reduce(sp.max_y, Op::Max), block_reduce(sp.sum_rx, Op::Sum), block_reduce(sp.sum_ry, Op::Sum)};
  if (threadIdx.x == 0) part[blockIdx.x] = sp;
}

// 3. The grid: about sqrt(4m) cells a side at most, as on the CPU.
__global__ void grid_params(const Extent* extent_part, const Spread* spread_part, int parts, GridParams* params) {
  const Extent e = reduce_extents(extent_part, parts);
  Spread sp{INFINITY, -INFINITY, INFINITY, -INFINITY, 0, 0};
  for (int k = threadIdx.x; k < parts; k += kReduceThreads) {
    const Spread& q = spread_part[k];
    sp.min_x = fmin(sp.min_x, q.min_x), sp.max_x = fmax(sp.max_x, q.max_x);
    sp.min_y = fmin(sp.min_y, q.min_y), sp.max_y = fmax(sp.max_y, q.max_y);
    sp.sum_rx += q.sum_rx, sp.sum_ry += q.sum_ry;
  }
  sp = Spread{block_reduce(sp.min_x, Op::Min), block_reduce(sp.max_x, Op::Max), block_reduce(sp.min_y, Op::Min),
              block_reduce(sp.max_y, Op::Max), block_reduce(sp.sum_rx, Op::Sum), block_reduce(sp.sum_ry, Op::Sum)};
  if (threadIdx.x != 0) return;
  const double m = e.count;
  GridParams p{0, 0, 1, 1, 1, 1};
  if (m >= 1) {
    const long long max_cells = static_cast<long long>(fmax(1.0, floor(sqrt(4.0 * m))));
    p.min_x = sp.min_x;
    p.min_y = sp.min_y;
    p.gx = cells_along(sp.min_x, sp.max_x, sp.sum_rx / m, max_cells, &p.cell_w);
    p.gy = cells_along(sp.min_y, sp.max_y, sp.sum_ry / m, max_cells, &p.cell_h);
  }
  *params = p;
}

constexpr int kNoCell = 0x7fffffff;  // boxes that never interact sort after every cell

__global__ void count_cells(const GridBox* gb, const GridParams* params, int64_t n, int* cell, int* rank,
                            int* cell_count) {
  const GridParams p = *params;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const GridBox g = gb[i];
    rank[i] = static_cast<int>(i);
    if (g.rx < 0) {
      cell[i] = kNoCell;
      continue;
    }
    const long long c = cell_of(g.cy, p.min_y, p.cell_h, p.gy) * p.gx + cell_of(g.cx, p.min_x, p.cell_w, p.gx);
    cell[i] = static_cast<int>(c);
    atomicAdd(&cell_count[c], 1);
  }
}

// Members of each cell in rank order (the stable sort by cell keeps rank order inside
// a cell), with their boxes beside them.
template <typename T>
__global__ void fill_cells(const int* sorted_cell, const int* sorted_rank, Sorted<T> s, int* member_rank,
                           T* member_box) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < s.n; k += int64_t(gridDim.x) * blockDim.x) {
    if (sorted_cell[k] == kNoCell) continue;
    const int i = sorted_rank[k];
    member_rank[k] = i;
    for (int c = 0; c < 4; ++c) member_box[4 * k + c] = s.boxes[4 * int64_t(i) + c];
  }
}

// Per box r (one warp, its lanes taking every 32nd cell of r's reach): the later boxes
// r suppresses. Those in r's own block of 64 go to diag[r]; the others to a list of
// list_count[r] ranks at pool[list_begin[r]]. A lane keeps its first hits in registers
// and walks its cells again only if it has more. If `pool_used` passes `pool_size`, the
// lists are incomplete and the host falls back to the dense path.
constexpr int kLocalHits = 8, kPairsThreads = kTune.nms_pairs_threads;

template <typename T>
__global__ void __launch_bounds__(kPairsThreads)
grid_pairs(Sorted<T> s, const GridBox* gb, const GridParams* params, const int* cell_begin, const int* member_rank,
           const T* member_box, float threshold, unsigned long long* diag, int* list_count,
           unsigned long long* list_begin, int* pool, unsigned long long pool_size, unsigned long long* pool_used) {
  const int lane = threadIdx.x % 32;
  const int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;  // the same for the whole warp
  if (r >= s.n) return;
  const GridBox g = gb[r];
  if (g.rx < 0) {
    if (lane == 0) diag[r] = 0, list_count[r] = 0;
    return;
  }
  const GridParams p = *params;
  const long long x0 = cell_of(g.cx - g.rx, p.min_x, p.cell_w, p.gx), x1 = cell_of(g.cx + g.rx, p.min_x, p.cell_w, p.gx);
  const long long y0 = cell_of(g.cy - g.ry, p.min_y, p.cell_h, p.gy), y1 = cell_of(g.cy + g.ry, p.min_y, p.cell_h, p.gy);
  const long long nx = x1 - x0 + 1, cells = nx * (y1 - y0 + 1);
  T a[4];
  for (int k = 0; k < 4; ++k) a[k] = s.boxes[4 * r + k];
  const int64_t block_end = (r / kBitsPerWord + 1) * kBitsPerWord;
  unsigned long long d = 0;
  int count = 0, hits[kLocalHits];
  // Calls `hit(j)` for every later box j of r's cells (this lane's share) above the threshold.
  auto walk = [&](auto&& hit) {
    for (long long ci = lane; ci < cells; ci += 32) {
      const long long c = (y0 + ci / nx) * p.gx + x0 + ci % nx;
      const int end = cell_begin[c + 1];
      int k = cell_begin[c];
      while (k < end && member_rank[k] <= r) ++k;  // members are in rank order
      for (; k < end; ++k)
        if (same_class(s.cls, r, member_rank[k]) && iou_above(a, member_box + 4 * int64_t(k), threshold))
          hit(member_rank[k]);
    }
  };
  walk([&](int j) {
    if (j < block_end) {
      d |= 1ull << (j % kBitsPerWord);
    } else {
      if (count < kLocalHits) hits[count] = j;
      ++count;
    }
  });
  // The warp's hits: diag by OR, list slots by a prefix sum over the lanes.
  d = (unsigned long long)__reduce_or_sync(~0u, static_cast<unsigned>(d)) |
      (unsigned long long)__reduce_or_sync(~0u, static_cast<unsigned>(d >> 32)) << 32;
  int before = count;
  for (int o = 1; o < 32; o *= 2) {
    const int v = __shfl_up_sync(~0u, before, o);
    if (lane >= o) before += v;
  }
  const int total = __shfl_sync(~0u, before, 31);
  before -= count;
  unsigned long long at = 0;
  if (lane == 0 && total > 0) at = atomicAdd(pool_used, static_cast<unsigned long long>(total));
  at = __shfl_sync(~0u, at, 0);
  const bool fits = at + total <= pool_size;
  if (fits && count > 0) {
    unsigned long long w = at + before;
    if (count <= kLocalHits) {
      for (int h = 0; h < count; ++h) pool[w + h] = hits[h];
    } else {
      walk([&](int j) {
        if (j >= block_end) pool[w++] = j;
      });
    }
  }
  if (lane == 0) {
    diag[r] = d;
    list_count[r] = fits ? total : 0;
    list_begin[r] = at;
  }
}

// Greedy sweep in one block, 64 boxes a step, 4 threads per row:
//  1. warp 0 resolves the step's rows in order against `removed`; only rows with
//     diag bits can remove others of the step, so the serial walk visits just them
//     (find-first-set over the 64 diag words, passed by shuffles);
//  2. every kept row's list goes into `removed` (shared memory), its 4 threads taking
//     every 4th entry.
// Loads run ahead: list bounds two steps ahead, the first entries of each list one step
// ahead, so a step waits on no memory unless a list is longer than those entries.
constexpr int kRowsPerStep = kTune.nms_sweep_rows, kThreadsPerRow = kTune.nms_sweep_threads_per_row;
constexpr int kSweepThreads = kRowsPerStep * kThreadsPerRow;
constexpr int kAhead = kTune.nms_prefetch;  // entries per thread loaded a step ahead (48 per row)

struct RowBounds {
  unsigned long long diag, begin;
  int count;
};

__global__ void __launch_bounds__(kSweepThreads)
sweep_lists(const unsigned long long* diag, const int* list_count, const unsigned long long* list_begin,
            const int* pool, const unsigned long long* dropped, int64_t n, int64_t words, uint8_t* keep,
            int64_t* kept_count) {
  extern __shared__ unsigned long long removed[];
  __shared__ unsigned long long step_diag[kRowsPerStep];
  __shared__ unsigned long long step_kept;
  const int t = threadIdx.x, row = t / kThreadsPerRow, q = t % kThreadsPerRow;
  for (int64_t w = t; w < words; w += kSweepThreads) removed[w] = dropped[w];
  auto bounds = [&](int64_t b) {
    const int64_t r = b * kRowsPerStep + row;
    RowBounds rb{0, 0, 0};
    if (b < words && r < n) rb = RowBounds{diag[r], list_begin[r], list_count[r]};
    return rb;  // begin is meaningful only where count > 0
  };
  auto entries = [&](const RowBounds& rb, int (&j)[kAhead]) {
#pragma unroll
    for (int u = 0; u < kAhead; ++u) {
      const int idx = q + kThreadsPerRow * u;
      j[u] = idx < rb.count ? __ldg(&pool[rb.begin + idx]) : -1;
    }
  };
  long long total = 0;
  // One step. Its loads land in registers that later steps read: the roles of A, B, C
  // (bounds) and JA, JB (entries) rotate from step to step instead of copying, since a
  // copy would wait for its load to arrive.
  auto step = [&](int64_t b, const RowBounds& cur, const RowBounds& next, RowBounds& after,
                  const int (&cur_j)[kAhead], int (&next_j)[kAhead]) {
    after = bounds(b + 2);
    entries(next, next_j);
    if (q == 0) step_diag[row] = cur.diag;
    __syncthreads();
    const int64_t left = n - b * kRowsPerStep;
    if (t < 32) {
      const unsigned long long valid = left >= kRowsPerStep ? ~0ull : (1ull << left) - 1;
      const unsigned long long d0 = step_diag[t], d1 = step_diag[t + 32];
      const unsigned long long with_diag =
          (unsigned long long)__ballot_sync(~0u, d0 != 0) | (unsigned long long)__ballot_sync(~0u, d1 != 0) << 32;
      // Lane 0 alone reads and writes removed[b] (no lane reads what another writes).
      unsigned long long rem = __shfl_sync(~0u, t == 0 ? removed[b] : 0ull, 0);
      for (unsigned long long open = ~rem & valid & with_diag; open;) {
        const int r = __ffsll(static_cast<long long>(open)) - 1;
        rem |= __shfl_sync(~0u, r < 32 ? d0 : d1, r & 31);
        open &= ~rem & (r == kRowsPerStep - 1 ? 0ull : ~0ull << (r + 1));
      }
      if (t == 0) {
        removed[b] = rem;
        step_kept = ~rem & valid;
        total += __popcll(~rem & valid);
      }
    }
    __syncthreads();
    const bool kept = (step_kept >> row) & 1;
    if (q == 0 && row < left) keep[b * kRowsPerStep + row] = kept;
    if (kept) {
#pragma unroll
      for (int u = 0; u < kAhead; ++u)
        if (cur_j[u] >= 0) atomicOr(&removed[cur_j[u] / kBitsPerWord], 1ull << (cur_j[u] % kBitsPerWord));
      for (int idx = q + kThreadsPerRow * kAhead; idx < cur.count; idx += kThreadsPerRow) {  // long lists
        const int j = __ldg(&pool[cur.begin + idx]);
        atomicOr(&removed[j / kBitsPerWord], 1ull << (j % kBitsPerWord));
      }
    }
    __syncthreads();
  };
  RowBounds A = bounds(0), B = bounds(1), C;
  int JA[kAhead], JB[kAhead];
  entries(A, JA);
  __syncthreads();
  for (int64_t b = 0; b < words; b += 6) {
    step(b, A, B, C, JA, JB);
    if (b + 1 < words) step(b + 1, B, C, A, JB, JA);
    if (b + 2 < words) step(b + 2, C, A, B, JA, JB);
    if (b + 3 < words) step(b + 3, A, B, C, JB, JA);
    if (b + 4 < words) step(b + 4, B, C, A, JA, JB);
    if (b + 5 < words) step(b + 5, C, A, B, JB, JA);
  }
  if (t == 0) *kept_count = total;
}

// ---- Dense path -----------------------------------------------------------------------

// Bit j of mask[row * words + col_block] is set when box (col_block*64 + j), later
// in score order than `row`, has IoU > threshold with it (and the same category).
template <typename T>
__global__ void iou_mask(Sorted<T> s, float threshold, uint64_t* mask, int64_t words) {
  const int64_t row_block = blockIdx.y, col_block = blockIdx.x, n = s.n;
  if (row_block > col_block) return;
  const int64_t rows_left = n - row_block * kBitsPerWord, cols_left = n - col_block * kBitsPerWord;
  const int64_t rows = rows_left < kBitsPerWord ? rows_left : kBitsPerWord;
  const int64_t cols = cols_left < kBitsPerWord ? cols_left : kBitsPerWord;
  __shared__ T block_boxes[kBitsPerWord * 4];
  if (threadIdx.x < cols)
    for (int c = 0; c < 4; ++c)
      block_boxes[threadIdx.x * 4 + c] = s.boxes[(col_block * kBitsPerWord + threadIdx.x) * 4 + c];
  __syncthreads();
  if (threadIdx.x >= rows) return;
  const int64_t row = row_block * kBitsPerWord + threadIdx.x;
  const T* a = s.boxes + row * 4;
  uint64_t bits = 0;
  for (int64_t j = row_block == col_block ? threadIdx.x + 1 : 0; j < cols; ++j)
    if (same_class(s.cls, row, col_block * kBitsPerWord + j) && iou_above(a, block_boxes + j * 4, threshold))
      bits |= 1ull << j;
  mask[row * words + col_block] = bits;
}

// Greedy sweep over the mask in one thread block, 64 boxes (one mask word) at a time:
//  1. the 64 diagonal words of the current block go to shared memory, and one thread
//     resolves the block in order against `removed`, jumping from kept row to kept
//     row (find-first-set) with bit operations only;
//  2. each later word w gets the OR of the kept rows' mask words: threads own
//     (word, group of kept rows) pairs and OR in registers, so few threads meet at
//     one shared word (an atomicOr per kept row and word serialised 64 deep).
// One step per 64 boxes instead of one barrier per box.
__global__ void sweep_mask(const uint64_t* mask, const unsigned long long* dropped, int64_t n, int64_t words,
                           uint8_t* keep, int64_t* kept_count) {
  extern __shared__ unsigned long long removed[];
  __shared__ unsigned long long diag[kBitsPerWord];
  __shared__ int kept_rows[kBitsPerWord];
  __shared__ int kept_in_block;
  for (int64_t w = threadIdx.x; w < words; w += blockDim.x) removed[w] = dropped[w];
  int64_t total = 0;
  for (int64_t b = 0; b < words; ++b) {
    const int rows = static_cast<int>(n - b * kBitsPerWord < kBitsPerWord ? n - b * kBitsPerWord : kBitsPerWord);
    if (threadIdx.x < rows) diag[threadIdx.x] = mask[(b * kBitsPerWord + threadIdx.x) * words + b];
    __syncthreads();
    if (threadIdx.x == 0) {
      const unsigned long long valid = rows == kBitsPerWord ? ~0ull : (1ull << rows) - 1;
      unsigned long long rem = removed[b];
      int count = 0;
      for (unsigned long long open = ~rem & valid; open;) {
        const int r = __ffsll(static_cast<long long>(open)) - 1;
        kept_rows[count++] = r;
        rem |= diag[r];
        open = ~rem & valid & (r == kBitsPerWord - 1 ? 0ull : ~0ull << (r + 1));
      }
      removed[b] = rem;
      kept_in_block = count;
      total += count;
    }
    __syncthreads();
    const int count = kept_in_block;
    for (int r = threadIdx.x; r < rows; r += blockDim.x) keep[b * kBitsPerWord + r] = 0;
    __syncthreads();
    for (int k = threadIdx.x; k < count; k += blockDim.x) keep[b * kBitsPerWord + kept_rows[k]] = 1;
    const int64_t span = words - b - 1;
    if (span > 0 && count > 0) {
      // groups of kept rows per word: enough to use the block, at most one row each
      int64_t groups = blockDim.x / span;
      groups = groups < 1 ? 1 : groups > count ? count : groups;
      const int64_t per_group = (count + groups - 1) / groups;
      for (int64_t t = threadIdx.x; t < span * groups; t += blockDim.x) {
        const int64_t w = b + 1 + t % span, g = t / span;
        const int64_t k0 = g * per_group, k1 = k0 + per_group < count ? k0 + per_group : count;
        unsigned long long acc = 0;
        for (int64_t k = k0; k < k1; ++k)
          acc |= static_cast<unsigned long long>(mask[(b * kBitsPerWord + kept_rows[k]) * words + w]);
        if (acc) {
          if (groups == 1) removed[w] |= acc;
          else atomicOr(&removed[w], acc);
        }
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *kept_count = total;
}

template <typename T>
__global__ void to_float(const T* in, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = float(in[i]);
}

// ---- Host side ------------------------------------------------------------------------

class Launcher {
 public:
  Launcher(int device, cudaStream_t stream) : device_(device), stream_(stream) {}
  Scratch scratch(std::size_t bytes) const { return Scratch{allocate(bytes ? bytes : 1, device_, stream_)}; }
  Scratch zeros(std::size_t bytes) const {
    Scratch s = scratch(bytes);
    TVOPS_CUDA_CHECK(cudaMemsetAsync(s.get<void>(), 0, bytes, stream_));
    return s;
  }
  unsigned grid(int64_t n) const { return grid_stride_blocks(n); }
  cudaStream_t stream() const { return stream_; }

 private:
  int device_;
  cudaStream_t stream_;
};

// Which category each box has, converted to double on the device (null: no categories).
struct Categories {
  const void* data = nullptr;
  DType dtype = DType::Int64;
};

template <typename F>
void with_category_type(const Categories& c, F&& f) {
  switch (c.dtype) {
    case DType::Int64: return f(static_cast<const int64_t*>(c.data));
    case DType::Int32: return f(static_cast<const int32_t*>(c.data));
    case DType::Float32: return f(static_cast<const float*>(c.data));
    case DType::Float64: return f(static_cast<const double*>(c.data));
    default:
      detail::fail(ErrorKind::Type, "batched_nms: CUDA idxs must be int64, int32, float32 or float64, got ",
                   dtype_name(c.dtype));
  }
}

// Sort by score; keep the sorted boxes (and categories, when `per_class`).
struct ScoreOrder {
  Scratch order, boxes, cls;
};

template <typename T>
ScoreOrder sort_by_score(const Launcher& L, const T* boxes, const T* scores, const Categories& cats,
                            bool per_class, int64_t n) {
  auto stream = L.stream();
  ScoreOrder so;
  Scratch keys = L.scratch(n * sizeof(T)), keys_sorted = L.scratch(n * sizeof(T));
  Scratch index = L.scratch(n * sizeof(int64_t));
  so.order = L.scratch(n * sizeof(int64_t));
  prepare_keys<<<L.grid(n), kElementwise, 0, stream>>>(scores, keys.get<T>(), index.get<int64_t>(), n);
  std::size_t temp_bytes = 0;
  TVOPS_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, temp_bytes, keys.get<T>(), keys_sorted.get<T>(),
                                                             index.get<int64_t>(), so.order.get<int64_t>(), n, 0,
                                                             sizeof(T) * 8, stream));
  Scratch temp = L.scratch(temp_bytes);
  TVOPS_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(temp.get<void>(), temp_bytes, keys.get<T>(),
                                                             keys_sorted.get<T>(), index.get<int64_t>(),
                                                             so.order.get<int64_t>(), n, 0, sizeof(T) * 8, stream));
  so.boxes = L.scratch(4 * n * sizeof(T));
  if (per_class) {
    so.cls = L.scratch(n * sizeof(double));
    with_category_type(cats, [&](auto* idxs) {
      gather_sorted<<<L.grid(n), kElementwise, 0, stream>>>(boxes, idxs, so.order.get<int64_t>(), so.boxes.get<T>(),
                                                   so.cls.get<double>(), n);
    });
  } else {
    gather_sorted<<<L.grid(n), kElementwise, 0, stream>>>(boxes, static_cast<const int64_t*>(nullptr),
                                                 so.order.get<int64_t>(), so.boxes.get<T>(), nullptr, n);
  }
  return so;
}

// What a path leaves for the output: keep flags per sorted box and, in `host[0]`,
// the kept count (host[1]: list entries wanted, grid path only).
struct Swept {
  Scratch keep, counts;
};

template <typename T>
Swept grid_path(const Launcher& L, const Sorted<T>& s, double iou_threshold, const Scratch& dropped,
                unsigned long long pool_size) {
  auto stream = L.stream();
  const int64_t n = s.n, words = (n + kBitsPerWord - 1) / kBitsPerWord, max_cells = 4 * n + 2;
  Scratch gb = L.scratch(n * sizeof(GridBox)), params = L.scratch(sizeof(GridParams));
  const int parts = static_cast<int>(std::min<int64_t>(kMaxPartials, blocks_for(n, kReduceThreads)));
  Scratch extent = L.scratch(parts * sizeof(Extent)), spread = L.scratch(parts * sizeof(Spread));
  grid_extent<T><<<parts, kReduceThreads, 0, stream>>>(s, gb.get<GridBox>(), dropped.get<unsigned long long>(),
                                                       extent.get<Extent>());
  grid_centres<T><<<parts, kReduceThreads, 0, stream>>>(s, iou_threshold, extent.get<Extent>(), parts,
                                                        gb.get<GridBox>(), spread.get<Spread>());
  grid_params<<<1, kReduceThreads, 0, stream>>>(extent.get<Extent>(), spread.get<Spread>(), parts,
                                                params.get<GridParams>());
  Scratch cell = L.scratch(n * sizeof(int)), rank = L.scratch(n * sizeof(int));
  Scratch cell_count = L.zeros((max_cells + 1) * sizeof(int));
  count_cells<<<L.grid(n), kElementwise, 0, stream>>>(gb.get<GridBox>(), params.get<GridParams>(), n, cell.get<int>(),
                                             rank.get<int>(), cell_count.get<int>());
  Scratch cell_begin = L.scratch((max_cells + 1) * sizeof(int));
  std::size_t scan_bytes = 0;
  TVOPS_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, cell_count.get<int>(), cell_begin.get<int>(),
                                                 max_cells + 1, stream));
  Scratch scan_temp = L.scratch(scan_bytes);
  TVOPS_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(scan_temp.get<void>(), scan_bytes, cell_count.get<int>(),
                                                 cell_begin.get<int>(), max_cells + 1, stream));
  // Stable sort by cell (ranks ascending inside a cell); non-interacting boxes last.
  Scratch sorted_cell = L.scratch(n * sizeof(int)), sorted_rank = L.scratch(n * sizeof(int));
  std::size_t sort_bytes = 0;
  TVOPS_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, cell.get<int>(), sorted_cell.get<int>(),
                                                   rank.get<int>(), sorted_rank.get<int>(), n, 0, 31, stream));
  Scratch sort_temp = L.scratch(sort_bytes);
  TVOPS_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_temp.get<void>(), sort_bytes, cell.get<int>(),
                                                   sorted_cell.get<int>(), rank.get<int>(), sorted_rank.get<int>(), n,
                                                   0, 31, stream));
  Scratch member_rank = L.scratch(n * sizeof(int)), member_box = L.scratch(4 * n * sizeof(T));
  fill_cells<T><<<L.grid(n), kElementwise, 0, stream>>>(sorted_cell.get<int>(), sorted_rank.get<int>(), s,
                                               member_rank.get<int>(), member_box.get<T>());

  Scratch diag = L.scratch(n * sizeof(unsigned long long)), list_count = L.scratch(n * sizeof(int));
  Scratch list_begin = L.scratch(n * sizeof(unsigned long long)), pool = L.scratch(pool_size * sizeof(int));
  Swept out{L.scratch(n), L.zeros(2 * sizeof(int64_t))};
  auto* pool_used = reinterpret_cast<unsigned long long*>(out.counts.get<int64_t>() + 1);
  grid_pairs<T><<<blocks_for(32 * n, kPairsThreads), kPairsThreads, 0, stream>>>(
      s, gb.get<GridBox>(), params.get<GridParams>(), cell_begin.get<int>(), member_rank.get<int>(),
      member_box.get<T>(), static_cast<float>(iou_threshold), diag.get<unsigned long long>(), list_count.get<int>(),
      list_begin.get<unsigned long long>(), pool.get<int>(), pool_size, pool_used);
  sweep_lists<<<1, kSweepThreads, words * sizeof(unsigned long long), stream>>>(
      diag.get<unsigned long long>(), list_count.get<int>(), list_begin.get<unsigned long long>(), pool.get<int>(),
      dropped.get<unsigned long long>(), n, words, out.keep.get<uint8_t>(), out.counts.get<int64_t>());
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return out;
}

template <typename T>
Swept dense_path(const Launcher& L, const Sorted<T>& s, double iou_threshold, const Scratch& dropped) {
  auto stream = L.stream();
  const int64_t n = s.n, words = (n + kBitsPerWord - 1) / kBitsPerWord;
  Scratch mask = L.scratch(n * words * sizeof(uint64_t));
  iou_mask<T><<<dim3(unsigned(words), unsigned(words)), kBitsPerWord, 0, stream>>>(
      s, static_cast<float>(iou_threshold), mask.get<uint64_t>(), words);
  Swept out{L.scratch(n), L.zeros(2 * sizeof(int64_t))};
  sweep_mask<<<1, 1024, words * sizeof(uint64_t), stream>>>(mask.get<uint64_t>(), dropped.get<unsigned long long>(),
                                                            n, words, out.keep.get<uint8_t>(),
                                                            out.counts.get<int64_t>());
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return out;
}

// Shared memory for the sweeps' `removed` bitmap: one bit per box.
int64_t max_boxes(int device) {
  int optin = 0;
  TVOPS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return int64_t(optin - 2048) * 8;  // less what the dense sweep keeps beside the bitmap
}

// nms of the sorted boxes, then their original indices in score order.
template <typename T>
Tensor sweep_and_select(const Launcher& L, const ScoreOrder& so, const double* cls, int64_t n,
                        double iou_threshold, const Context& ctx, int device) {
  auto stream = L.stream();
  const int64_t words = (n + kBitsPerWord - 1) / kBitsPerWord;
  const char* op = cls ? "batched_nms" : "nms";
  TVOPS_CHECK(n <= max_boxes(device), Value, op, ": ", n, " boxes exceed what one CUDA block can sweep here (",
              max_boxes(device), ")");
  allow_dynamic_smem(&sweep_lists, words * 8);
  allow_dynamic_smem(&sweep_mask, words * 8);
  Scratch dropped = L.zeros(words * sizeof(unsigned long long));
  const Sorted<T> s{so.boxes.get<T>(), cls, n};
  const bool grid = iou_threshold >= 0;  // false for NaN too
  const unsigned long long pool_size = static_cast<unsigned long long>(n) * kListSlotsPerBox;
  Swept swept = grid ? grid_path(L, s, iou_threshold, dropped, pool_size) : dense_path(L, s, iou_threshold, dropped);
  int64_t host[2] = {0, 0};
  copy_to_host_sync(host, swept.counts.get<int64_t>(), sizeof(host), stream);  // sizes the output
  if (grid && static_cast<unsigned long long>(host[1]) > pool_size) {
    // More overlapping pairs than the lists hold (low thresholds, piles of boxes).
    swept = dense_path(L, s, iou_threshold, dropped);
    copy_to_host_sync(host, swept.counts.get<int64_t>(), sizeof(int64_t), stream);
  }
  Tensor out = Tensor::empty({host[0]}, DType::Int64, Device{DeviceType::CUDA, device}, ctx);
  Scratch selected = L.scratch(sizeof(int64_t));
  std::size_t temp_bytes = 0;
  TVOPS_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, temp_bytes, so.order.get<int64_t>(), swept.keep.get<uint8_t>(),
                                              out.data<int64_t>(), selected.get<int64_t>(), n, stream));
  Scratch temp = L.scratch(temp_bytes);
  TVOPS_CUDA_CHECK(cub::DeviceSelect::Flagged(temp.get<void>(), temp_bytes, so.order.get<int64_t>(),
                                              swept.keep.get<uint8_t>(), out.data<int64_t>(),
                                              selected.get<int64_t>(), n, stream));
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return out;
}

template <typename T>
Tensor nms_typed(const T* boxes, const T* scores, int64_t n, double iou_threshold, const Categories& cats,
                 const Context& ctx, int device) {
  const Launcher L(device, static_cast<cudaStream_t>(ctx.cuda_stream));
  if (!cats.data) {
    const ScoreOrder so = sort_by_score(L, boxes, scores, cats, false, n);
    return sweep_and_select<T>(L, so, nullptr, n, iou_threshold, ctx, device);
  }
  if (4 * n <= kOffsetTrickMaxNumel) {  // torchvision's coordinate trick
    Scratch max_coord = L.scratch(sizeof(T)), shifted = L.scratch(4 * n * sizeof(T));
    max_coordinate<<<1, 1024, 0, L.stream()>>>(boxes, 4 * n, max_coord.get<T>());
    with_category_type(cats, [&](auto* idxs) {
      offset_boxes<<<L.grid(n), kElementwise, 0, L.stream()>>>(boxes, idxs, max_coord.get<T>(), shifted.get<T>(), n);
    });
    const ScoreOrder so = sort_by_score(L, shifted.get<T>(), scores, Categories{}, false, n);
    return sweep_and_select<T>(L, so, nullptr, n, iou_threshold, ctx, device);
  }
  const ScoreOrder so = sort_by_score(L, boxes, scores, cats, true, n);
  return sweep_and_select<T>(L, so, so.cls.get<double>(), n, iou_threshold, ctx, device);
}

Tensor nms_any(const Tensor& boxes_in, const Tensor& scores_in, const Categories& cats, double iou_threshold,
               const Context& ctx) {
  const int device = boxes_in.device().index;
  DeviceGuard guard(device);
  const int64_t n = boxes_in.size(0);
  if (n == 0) return Tensor::empty({0}, DType::Int64, boxes_in.device(), ctx);
  const Tensor boxes = boxes_in.contiguous(ctx), scores = scores_in.contiguous(ctx);
  switch (boxes.dtype()) {
    case DType::Float32:
      return nms_typed(boxes.data<float>(), scores.data<float>(), n, iou_threshold, cats, ctx, device);
    case DType::Float64:
      return nms_typed(boxes.data<double>(), scores.data<double>(), n, iou_threshold, cats, ctx, device);
    default: {  // float16 / bfloat16: compute in float32
      const Launcher L(device, static_cast<cudaStream_t>(ctx.cuda_stream));
      Scratch b = L.scratch(4 * n * sizeof(float)), s = L.scratch(n * sizeof(float));
      if (boxes.dtype() == DType::Float16) {
        to_float<<<L.grid(4 * n), kElementwise, 0, L.stream()>>>(boxes.data<__half>(), b.get<float>(), 4 * n);
        to_float<<<L.grid(n), kElementwise, 0, L.stream()>>>(scores.data<__half>(), s.get<float>(), n);
      } else {
        to_float<<<L.grid(4 * n), kElementwise, 0, L.stream()>>>(boxes.data<__nv_bfloat16>(), b.get<float>(), 4 * n);
        to_float<<<L.grid(n), kElementwise, 0, L.stream()>>>(scores.data<__nv_bfloat16>(), s.get<float>(), n);
      }
      return nms_typed(b.get<float>(), s.get<float>(), n, iou_threshold, cats, ctx, device);
    }
  }
}

}  // namespace

Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold, const Context& ctx) {
  return nms_any(boxes, scores, Categories{}, iou_threshold, ctx);
}

Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& idxs, double iou_threshold,
                   const Context& ctx) {
  const Tensor ids = idxs.contiguous(ctx);
  return nms_any(boxes, scores, Categories{ids.data<void>(), ids.dtype()}, iou_threshold, ctx);
}

}  // namespace tvops::cuda
