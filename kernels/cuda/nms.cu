// CUDA NMS: sort on the device, a 64x64-tiled IoU bitmask, and a single-block
// greedy sweep over the mask on the device (no copy of the mask to the host).
// IoU follows torchvision's devIoU: the threshold is compared as float, and areas
// accumulate in float for half inputs.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/cuda_backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace tvops::cuda {

namespace {

constexpr int kBitsPerWord = 64;

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

template <typename T>
__global__ void gather_boxes(const T* boxes, const int64_t* order, T* sorted, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t src = order[i];
    for (int c = 0; c < 4; ++c) sorted[4 * i + c] = boxes[4 * src + c];
  }
}

// Bit j of mask[row * words + col_block] is set when box (col_block*64 + j), later
// in score order than `row`, has IoU > threshold with it.
template <typename T>
__global__ void iou_mask(const T* boxes, int64_t n, float threshold, uint64_t* mask, int64_t words) {
  const int64_t row_block = blockIdx.y, col_block = blockIdx.x;
  if (row_block > col_block) return;
  const int64_t rows_left = n - row_block * kBitsPerWord, cols_left = n - col_block * kBitsPerWord;
  const int64_t rows = rows_left < kBitsPerWord ? rows_left : kBitsPerWord;
  const int64_t cols = cols_left < kBitsPerWord ? cols_left : kBitsPerWord;
  __shared__ T block_boxes[kBitsPerWord * 4];
  if (threadIdx.x < cols)
    for (int c = 0; c < 4; ++c)
      block_boxes[threadIdx.x * 4 + c] = boxes[(col_block * kBitsPerWord + threadIdx.x) * 4 + c];
  __syncthreads();
  if (threadIdx.x >= rows) return;
  const int64_t row = row_block * kBitsPerWord + threadIdx.x;
  const T* a = boxes + row * 4;
  uint64_t bits = 0;
  for (int64_t j = row_block == col_block ? threadIdx.x + 1 : 0; j < cols; ++j)
    if (iou_above(a, block_boxes + j * 4, threshold)) bits |= 1ull << j;
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
__global__ void sweep_mask(const uint64_t* mask, int64_t n, int64_t words, uint8_t* keep, int64_t* kept_count) {
  extern __shared__ unsigned long long removed[];
  __shared__ unsigned long long diag[kBitsPerWord];
  __shared__ int kept_rows[kBitsPerWord];
  __shared__ int kept_in_block;
  for (int64_t w = threadIdx.x; w < words; w += blockDim.x) removed[w] = 0;
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

// Owner of a temporary device buffer from the stream-ordered allocator.
struct Scratch {
  std::shared_ptr<void> owner;
  template <typename T>
  T* get() const { return static_cast<T*>(owner.get()); }
};
Scratch scratch(std::size_t bytes, int device, cudaStream_t stream) {
  return Scratch{allocate(bytes, device, stream)};
}

template <typename T>
Tensor nms_typed(const T* boxes, const T* scores, int64_t n, double iou_threshold, const Context& ctx,
                 int device) {
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  const int threads = 256;
  const unsigned grid = blocks_for(n, threads) > 4096 ? 4096 : blocks_for(n, threads);

  // 1. Order by score.
  Scratch keys = scratch(n * sizeof(T), device, stream), keys_sorted = scratch(n * sizeof(T), device, stream);
  Scratch index = scratch(n * sizeof(int64_t), device, stream), order = scratch(n * sizeof(int64_t), device, stream);
  prepare_keys<<<grid, threads, 0, stream>>>(scores, keys.get<T>(), index.get<int64_t>(), n);
  std::size_t temp_bytes = 0;
  TVOPS_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, temp_bytes, keys.get<T>(), keys_sorted.get<T>(),
                                                             index.get<int64_t>(), order.get<int64_t>(), n, 0,
                                                             sizeof(T) * 8, stream));
  Scratch temp = scratch(temp_bytes, device, stream);
  TVOPS_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(temp.get<void>(), temp_bytes, keys.get<T>(),
                                                             keys_sorted.get<T>(), index.get<int64_t>(),
                                                             order.get<int64_t>(), n, 0, sizeof(T) * 8, stream));
  Scratch sorted = scratch(4 * n * sizeof(T), device, stream);
  gather_boxes<<<grid, threads, 0, stream>>>(boxes, order.get<int64_t>(), sorted.get<T>(), n);

  // 2. IoU bitmask over the upper triangle of 64x64 tiles.
  const int64_t words = (n + kBitsPerWord - 1) / kBitsPerWord;
  Scratch mask = scratch(n * words * sizeof(uint64_t), device, stream);
  iou_mask<T><<<dim3(unsigned(words), unsigned(words)), kBitsPerWord, 0, stream>>>(
      sorted.get<T>(), n, static_cast<float>(iou_threshold), mask.get<uint64_t>(), words);

  // 3. Greedy sweep, then compact the kept indices in score order.
  Scratch keep = scratch(n, device, stream), count = scratch(2 * sizeof(int64_t), device, stream);
  const std::size_t smem = words * sizeof(uint64_t);
  TVOPS_CHECK(smem <= 48 * 1024, Value, "nms: ", n, " boxes exceed the CUDA kernel's limit of ",
              48 * 1024 / 8 * 64, " boxes");
  sweep_mask<<<1, 1024, smem, stream>>>(mask.get<uint64_t>(), n, words, keep.get<uint8_t>(), count.get<int64_t>());
  TVOPS_CUDA_CHECK(cudaGetLastError());
  int64_t kept = 0;
  copy_to_host_sync(&kept, count.get<int64_t>(), sizeof(int64_t), stream);  // sizes the output

  Tensor out = Tensor::empty({kept}, DType::Int64, Device{DeviceType::CUDA, device}, ctx);
  temp_bytes = 0;
  TVOPS_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, temp_bytes, order.get<int64_t>(), keep.get<uint8_t>(),
                                              out.data<int64_t>(), count.get<int64_t>() + 1, n, stream));
  Scratch temp2 = scratch(temp_bytes, device, stream);
  TVOPS_CUDA_CHECK(cub::DeviceSelect::Flagged(temp2.get<void>(), temp_bytes, order.get<int64_t>(),
                                              keep.get<uint8_t>(), out.data<int64_t>(), count.get<int64_t>() + 1,
                                              n, stream));
  TVOPS_CUDA_CHECK(cudaGetLastError());
  return out;
}

}  // namespace

Tensor nms(const Tensor& boxes_in, const Tensor& scores_in, double iou_threshold, const Context& ctx) {
  const int device = boxes_in.device().index;
  DeviceGuard guard(device);
  const int64_t n = boxes_in.size(0);
  if (n == 0) return Tensor::empty({0}, DType::Int64, boxes_in.device(), ctx);
  const Tensor boxes = boxes_in.contiguous(ctx), scores = scores_in.contiguous(ctx);
  switch (boxes.dtype()) {
    case DType::Float32:
      return nms_typed(boxes.data<float>(), scores.data<float>(), n, iou_threshold, ctx, device);
    case DType::Float64:
      return nms_typed(boxes.data<double>(), scores.data<double>(), n, iou_threshold, ctx, device);
    default: {  // float16 / bfloat16: compute in float32
      auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
      Scratch b = scratch(4 * n * sizeof(float), device, stream), s = scratch(n * sizeof(float), device, stream);
      const unsigned grid = blocks_for(4 * n, 256) > 4096 ? 4096 : blocks_for(4 * n, 256);
      if (boxes.dtype() == DType::Float16) {
        to_float<<<grid, 256, 0, stream>>>(boxes.data<__half>(), b.get<float>(), 4 * n);
        to_float<<<grid, 256, 0, stream>>>(scores.data<__half>(), s.get<float>(), n);
      } else {
        to_float<<<grid, 256, 0, stream>>>(boxes.data<__nv_bfloat16>(), b.get<float>(), 4 * n);
        to_float<<<grid, 256, 0, stream>>>(scores.data<__nv_bfloat16>(), s.get<float>(), n);
      }
      return nms_typed(b.get<float>(), s.get<float>(), n, iou_threshold, ctx, device);
    }
  }
}

}  // namespace tvops::cuda
