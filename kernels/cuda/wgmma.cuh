// Hopper warpgroup matrix products (internal): wgmma.mma_async with both operands in
// shared memory, for the sm90 variant (compiled for sm_90a). A warpgroup (4 warps, 128
// threads) multiplies a 64-row A tile by an N-row B tile (N = 64 or 128), both
// k-contiguous, and adds into 64 x N float32 accumulators spread over its threads like
// mma.sync's m16n8 fragments (warp w holds rows 16w .. 16w + 15). The product runs
// asynchronously: the warps issue it, go on (e.g. gather the next tiles), and wait before
// touching the accumulators or the tiles again.
//
// Tiles use the 128-byte swizzle: row r is 128 bytes (32 float32 or 64 16-bit values) at
// r * 128, its 16-byte chunk j stored at chunk j ^ (r % 8), tiles 1024-byte aligned.
// Stores of one row's 8 chunks by 8 lanes then hit 8 different bank groups. One product
// instruction takes 32 bytes of k (8 TF32 or 16 16-bit values).
#pragma once

#include <cstdint>

namespace tvops::cuda::wgmma {

// Offset (in elements of EB bytes) of element (r, k) of a 128-byte-swizzled tile.
template <int EB = 4>
__host__ __device__ constexpr int sw128(int r, int k) {
  constexpr int chunk = 16 / EB;  // elements in 16 bytes
  return r * 8 * chunk + ((k / chunk) ^ (r & 7)) * chunk + k % chunk;
}

// Shared-memory matrix descriptor: k-major, 128-byte swizzle, 8-row groups 1024 bytes
// apart (the leading offset is unused for swizzled k-major tiles).
__device__ inline uint64_t desc_sw128(const void* tile) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(tile));
  return uint64_t((addr & 0x3FFFF) >> 4) | uint64_t(1) << 16 | uint64_t(1024 >> 4) << 32 | uint64_t(1) << 62;
}

// Orders this thread's generic-proxy shared-memory writes (stores, cp.async) before later
// async-proxy reads (wgmma); then a barrier publishes them to the warpgroup.
__device__ inline void fence_smem_for_async() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// Keeps the compiler from moving accumulator reads or writes across the asynchronous product.
template <int N>
__device__ inline void fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

__device__ inline void arrive() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ inline void commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int Pending>
__device__ inline void wait() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
#endif
}

// The instructions. Their operand lists are long and alike, so macros spell them once:
// R<n>: the accumulator registers %0 .. %n-1, D<n>: those operands; A and B follow them.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TVOPS_WGMMA_ASM(...) asm volatile(__VA_ARGS__)
#else
#define TVOPS_WGMMA_ASM(...) __trap()  // other SM targets: the host never launches these
#endif
#define TVOPS_WGMMA_R32 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define TVOPS_WGMMA_R64 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define TVOPS_WGMMA_D32(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), \
    "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), \
    "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), \
    "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), \
    "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define TVOPS_WGMMA_D64(d) TVOPS_WGMMA_D32(d), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), \
    "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), \
    "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), \
    "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), \
    "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d[64 x N] = A[64 x 8] . B[N x 8]^T + (accumulate ? d : 0) in TF32 (float32 bits, the low
// mantissa bits ignored); N = 64 or 128, N / 2 accumulators a thread.
template <int N>
__device__ void mma_tf32(float (&d)[N / 2], uint64_t a, uint64_t b, bool accumulate = true);
// d[64 x N] += A[64 x 16] . B[N x 16]^T, bfloat16 or float16 operands (both k-major).
template <int N>
__device__ void mma_bf16(float (&d)[N / 2], uint64_t a, uint64_t b);
template <int N>
__device__ void mma_f16(float (&d)[N / 2], uint64_t a, uint64_t b);

#define TVOPS_WGMMA_TF32(N, R, D, IA, IB, IP)                                                     \
  template <>                                                                                  \
  __device__ inline void mma_tf32<N>(float(&d)[N / 2], uint64_t a, uint64_t b, bool accumulate) { \
    TVOPS_WGMMA_ASM("{\n.reg .pred p;\nsetp.ne.b32 p, %" #IP ", 0;\n"                              \
                    "wgmma.mma_async.sync.aligned.m64n" #N "k8.f32.tf32.tf32 " R ", %" #IA         \
                    ", %" #IB ", p, 1, 1;\n}\n"                                                    \
                    : D(d)                                                                     \
                    : "l"(a), "l"(b), "r"(int(accumulate)));                                   \
  }
#define TVOPS_WGMMA_HALF(NAME, PTX, N, R, D, IA, IB)                                              \
  template <>                                                                                  \
  __device__ inline void NAME<N>(float(&d)[N / 2], uint64_t a, uint64_t b) {                     \
    TVOPS_WGMMA_ASM("wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX "." PTX " " R ", %" #IA  \
                    ", %" #IB ", 1, 1, 1, 0, 0;\n"                                                 \
                    : D(d)                                                                     \
                    : "l"(a), "l"(b));                                                         \
  }
TVOPS_WGMMA_TF32(64, TVOPS_WGMMA_R32, TVOPS_WGMMA_D32, 32, 33, 34)
TVOPS_WGMMA_TF32(128, TVOPS_WGMMA_R64, TVOPS_WGMMA_D64, 64, 65, 66)
TVOPS_WGMMA_HALF(mma_bf16, "bf16", 64, TVOPS_WGMMA_R32, TVOPS_WGMMA_D32, 32, 33)
TVOPS_WGMMA_HALF(mma_bf16, "bf16", 128, TVOPS_WGMMA_R64, TVOPS_WGMMA_D64, 64, 65)
TVOPS_WGMMA_HALF(mma_f16, "f16", 64, TVOPS_WGMMA_R32, TVOPS_WGMMA_D32, 32, 33)
TVOPS_WGMMA_HALF(mma_f16, "f16", 128, TVOPS_WGMMA_R64, TVOPS_WGMMA_D64, 64, 65)
#undef TVOPS_WGMMA_TF32
#undef TVOPS_WGMMA_HALF

}  // namespace tvops::cuda::wgmma
