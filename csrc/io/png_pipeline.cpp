// PNG image data on two threads. libpng inflates and unfilters each row in turn on
// one thread; the two halves cost about the same (30 + 30 ms at 1920x1920 RGB), so
// here one thread inflates the IDAT stream (zlib) while the other unfilters the
// rows it has made and splits them into the CHW planes. Used for non-interlaced
// 8-bit gray / gray+alpha / RGB / RGBA files read without conversion (torchvision's
// common case), after libpng has parsed everything up to the first IDAT chunk.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <zlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/thread_pool.h"
#include "tvops/runtime.h"
#include "io/image_common.h"
#include "io/png_common.h"

namespace tvops::io {

namespace {

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

inline int paeth(int a, int b, int c) {
  const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

#if defined(__SSE2__)
// Paeth for 1- to 4-byte pixels, one pixel's bytes per vector (16-bit lanes); the
// dependency on the previous pixel keeps it serial across pixels, as in libpng.
template <int Bpp>
void paeth_sse2(uint8_t* cur, const uint8_t* prev, std::size_t n) {
  const __m128i zero = _mm_setzero_si128();
  auto load = [&](const uint8_t* p) {
    // Bytes assembled in a register: three narrow stores read back as one word would
    // stall store forwarding on every pixel.
    uint32_t v = 0;
    for (int k = 0; k < Bpp; ++k) v |= uint32_t(p[k]) << (8 * k);
    return _mm_unpacklo_epi8(_mm_cvtsi32_si128(static_cast<int>(v)), zero);
  };
  auto abs16 = [&](__m128i x) { return _mm_max_epi16(x, _mm_sub_epi16(zero, x)); };
  __m128i a = zero, c = zero;
  for (std::size_t i = 0; i < n; i += Bpp) {
    const __m128i b = load(prev + i), x = load(cur + i);
    const __m128i pa = abs16(_mm_sub_epi16(b, c)), pb = abs16(_mm_sub_epi16(a, c));
    const __m128i pc = abs16(_mm_sub_epi16(_mm_add_epi16(a, b), _mm_add_epi16(c, c)));
    // a where pa <= pb and pa <= pc, else b where pb <= pc, else c.
    const __m128i use_a = _mm_andnot_si128(_mm_or_si128(_mm_cmpgt_epi16(pa, pb), _mm_cmpgt_epi16(pa, pc)),
                                           _mm_set1_epi16(-1));
    const __m128i use_b = _mm_andnot_si128(_mm_cmpgt_epi16(pb, pc), _mm_set1_epi16(-1));
    const __m128i bc = _mm_or_si128(_mm_and_si128(use_b, b), _mm_andnot_si128(use_b, c));
    const __m128i pred = _mm_or_si128(_mm_and_si128(use_a, a), _mm_andnot_si128(use_a, bc));
    const __m128i out = _mm_and_si128(_mm_add_epi16(x, pred), _mm_set1_epi16(0xFF));
    const uint32_t v = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_packus_epi16(out, zero)));
    for (int k = 0; k < Bpp; ++k) cur[i + k] = static_cast<uint8_t>(v >> (8 * k));
    a = out, c = b;
  }
}
#endif

// Reverses a row's filter in place; false for an unknown filter type.
bool unfilter(int type, uint8_t* cur, const uint8_t* prev, std::size_t n, int bpp) {
  const std::size_t k = static_cast<std::size_t>(bpp);
  switch (type) {
    case 0: return true;
    case 1:
      for (std::size_t i = k; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + cur[i - k]);
      return true;
    case 2:
      for (std::size_t i = 0; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + prev[i]);
      return true;
    case 3:
      for (std::size_t i = 0; i < k && i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + (prev[i] >> 1));
      for (std::size_t i = k; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + ((cur[i - k] + prev[i]) >> 1));
      return true;
    case 4:
#if defined(__SSE2__)
      if (bpp == 1) return paeth_sse2<1>(cur, prev, n), true;
      if (bpp == 2) return paeth_sse2<2>(cur, prev, n), true;
      if (bpp == 3) return paeth_sse2<3>(cur, prev, n), true;
      if (bpp == 4) return paeth_sse2<4>(cur, prev, n), true;
#endif
      for (std::size_t i = 0; i < k && i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + prev[i]);
      for (std::size_t i = k; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + paeth(cur[i - k], prev[i], prev[i - k]));
      return true;
    default: return false;
  }
}

struct Shared {
  std::atomic<int64_t> rows_ready{0};  // rows fully inflated
  std::atomic<bool> inflater_done{false};
  std::atomic<bool> failed{false};
  char message[256] = {0};

  void fail(const char* m) {
    bool expected = false;
    if (failed.compare_exchange_strong(expected, true)) std::snprintf(message, sizeof(message), "%s", m);
  }
};

struct Inflater {
  z_stream zs{};
  bool live = false;
  ~Inflater() {
    if (live) inflateEnd(&zs);
  }
};

struct Unfilterer;
bool advance_rows(Unfilterer* u, int64_t limit);

// Inflates the IDAT chunks from `at` into raw (rows of 1 + rowbytes) up to `rows` rows,
// publishing progress in sh.rows_ready; `inline_rows` (one thread) unfilters as it goes.
void inflate_stream(const uint8_t* data, std::size_t size, std::size_t at, uint8_t* raw, int64_t rows,
                    std::size_t stride, Shared& sh, Unfilterer* inline_rows) {
  Inflater z;
  if (inflateInit(&z.zs) != Z_OK) return sh.fail("out of memory (zlib)");
  z.live = true;
#if ZLIB_VERNUM >= 0x1290
  inflateValidate(&z.zs, 0);  // each chunk's CRC-32 is checked below
#endif
  const std::size_t total = static_cast<std::size_t>(rows) * stride;
  z.zs.next_out = raw;
  z.zs.avail_out = static_cast<uInt>(total);  // callers keep images below 4 GiB here
  for (;;) {
    if (size - at < 12) return sh.fail("Image is incomplete or truncated (in the image data)");
    const uint32_t len = be32(data + at);
    if (std::memcmp(data + at + 4, "IDAT", 4) != 0) return sh.fail("Not enough image data");
    if (len > size - at - 12) return sh.fail("Image is incomplete or truncated (in the image data)");
    const uint8_t* payload = data + at + 8;
    const uLong crc = crc32(crc32(0L, data + at + 4, 4), payload, len);
    if (crc != be32(payload + len)) return sh.fail("IDAT: CRC error");
    std::size_t done = 0;
    while (done < len) {
      const std::size_t piece = std::min<std::size_t>(len - done, 1 << 16);
      z.zs.next_in = const_cast<Bytef*>(payload + done);
      z.zs.avail_in = static_cast<uInt>(piece);
      while (z.zs.avail_in > 0 && z.zs.avail_out > 0) {
        const int rc = inflate(&z.zs, Z_NO_FLUSH);
        const int64_t ready = static_cast<int64_t>((total - z.zs.avail_out) / stride);
        sh.rows_ready.store(ready, std::memory_order_release);
        if (inline_rows && !advance_rows(inline_rows, ready)) return;
        if (rc == Z_STREAM_END) {
          if (z.zs.avail_out > 0) return sh.fail("Not enough image data");
          break;
        }
        if (rc == Z_DATA_ERROR) return sh.fail(z.zs.msg ? z.zs.msg : "corrupt compressed data");
        if (rc == Z_MEM_ERROR) return sh.fail("out of memory (zlib)");
        if (rc != Z_OK && rc != Z_BUF_ERROR) return sh.fail("inflate failed");
        if (rc == Z_BUF_ERROR) break;
      }
      if (z.zs.avail_out == 0) return;  // every row needed is here; trailing data is ignored
      if (sh.failed.load(std::memory_order_relaxed)) return;
      done += piece - z.zs.avail_in;
      if (z.zs.avail_in > 0) break;  // stream ended inside this chunk
    }
    at += 12 + len;
  }
}

// Unfilters rows in order and splits those in [y0, y1) into the planes.
struct Unfilterer {
  uint8_t* raw;
  std::size_t stride;
  const PngPipelineJob& job;
  Shared& sh;
  std::vector<uint8_t> zeros = std::vector<uint8_t>(stride - 1, 0);
  int64_t next = 0;
  bool stream = (job.y1 - job.y0) * (job.x1 - job.x0) * job.channels >= kStreamBytes;

  // Rows up to `limit` (all inflated already).
  bool advance(int64_t limit) {
    const std::size_t rowbytes = stride - 1;
    const int64_t ow = job.x1 - job.x0, plane = (job.y1 - job.y0) * ow;
    uint8_t* planes[4];
    for (; next < limit; ++next) {
      uint8_t* row = raw + static_cast<std::size_t>(next) * stride;
      const uint8_t* prev = next == 0 ? zeros.data() : row - stride + 1;
      if (!unfilter(row[0], row + 1, prev, rowbytes, job.channels)) return sh.fail("bad adaptive filter value"), false;
      if (next < job.y0) continue;
      for (int c = 0; c < job.channels; ++c) planes[c] = job.out + c * plane + (next - job.y0) * ow;
      if (stream)
        deinterleave_row_stream(row + 1 + job.x0 * job.channels, ow, job.channels, planes);
      else
        deinterleave_row(row + 1 + job.x0 * job.channels, ow, job.channels, planes);
    }
    if (stream && next == job.y1) store_fence();
    return true;
  }

  // The second thread: follows the inflater until `rows` are done or it fails.
  void run_after(int64_t rows) {
    while (next < rows) {
      const int64_t ready = sh.rows_ready.load(std::memory_order_acquire);
      if (ready > next) {
        if (!advance(ready)) return;
        continue;
      }
      if (sh.failed.load(std::memory_order_relaxed) || sh.inflater_done.load(std::memory_order_acquire)) {
        if (sh.rows_ready.load(std::memory_order_acquire) > next) continue;  // the last rows came with the end
        return;
      }
      std::this_thread::yield();
    }
  }
};

bool advance_rows(Unfilterer* u, int64_t limit) { return u->advance(limit); }

void inflate_rows(const uint8_t* data, std::size_t size, std::size_t at, uint8_t* raw, int64_t rows,
                  std::size_t stride, Shared& sh, Unfilterer* inline_rows) {
  inflate_stream(data, size, at, raw, rows, stride, sh, inline_rows);
  sh.inflater_done.store(true, std::memory_order_release);
}

}  // namespace

std::string png_decode_pipelined(const PngPipelineJob& job) {
  const std::size_t stride = 1 + static_cast<std::size_t>(job.W) * job.channels;
  // The filtered rows: a block the host cache hands out again on the next call.
  Tensor raw = Tensor::empty({static_cast<int64_t>(stride) * job.y1}, DType::UInt8);
  Shared sh;
  Unfilterer rows{raw.data<uint8_t>(), stride, job, sh};
  if (detail::in_parallel_region() || num_threads() < 2) {
    // One thread: unfilter each block of rows right after inflating it, while in cache.
    inflate_rows(job.data, job.size, job.idat_at, raw.data<uint8_t>(), job.y1, stride, sh, &rows);
  } else {
    detail::parallel_for(0, 2, 1, [&](int64_t lo, int64_t hi) {
      if (lo == 0) inflate_rows(job.data, job.size, job.idat_at, raw.data<uint8_t>(), job.y1, stride, sh, nullptr);
      if (hi == 2) rows.run_after(job.y1);
    });
  }
  return sh.failed.load() ? std::string(sh.message) : std::string();
}

}  // namespace tvops::io
