// decode_jpeg: libjpeg-turbo through its libjpeg API (it alone has cropped and
// skipped scanlines next to DCT scaling), with torchvision's colour handling. Rows
// come out of libjpeg interleaved into a small buffer and go straight into the
// CHW planes while still in cache.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "dispatch/cpu_isa.h"
#include "io/image_common.h"
#include "tvops/io.h"

#if defined(TVOPS_WITH_JPEG)
#include "io/jpeg_common.h"
#endif

namespace tvops {

#if defined(TVOPS_WITH_JPEG)

namespace {

// A progressive file may hold any number of scans, each a full pass over the
// coefficients: a few kB can then cost minutes. libjpeg-turbo's own tools cap it too.
constexpr int kMaxScans = 1000;
constexpr int kRowsPerRead = 16;  // one iMCU row of 4:2:0 at full scale

const JOCTET kEoi[2] = {0xFF, JPEG_EOI};

void source_init(j_decompress_ptr) {}
void source_term(j_decompress_ptr) {}
boolean source_fill(j_decompress_ptr cinfo) {
  // All bytes were handed over at once: running out means the file is cut short.
  io::jpeg_fail(reinterpret_cast<j_common_ptr>(cinfo), "Image is incomplete or truncated");
}
void source_skip(j_decompress_ptr cinfo, long count) {
  jpeg_source_mgr* src = cinfo->src;
  if (count <= 0) return;
  if (static_cast<std::size_t>(count) > src->bytes_in_buffer) {  // skipping past the end: end the image there
    src->next_input_byte = kEoi;
    src->bytes_in_buffer = sizeof(kEoi);
  } else {
    src->next_input_byte += count;
    src->bytes_in_buffer -= static_cast<std::size_t>(count);
  }
}

void progress_monitor(j_common_ptr cinfo) {
  if (cinfo->is_decompressor && reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxScans)
    io::jpeg_fail(cinfo, "more than 1000 progressive scans (a hostile file?)");
}

// The libjpeg decompressor and everything it points to; destroyed on every path.
struct Decompressor {
  jpeg_decompress_struct cinfo;
  io::JpegError err;
  jpeg_source_mgr src;
  jpeg_progress_mgr progress;

  Decompressor() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    io::jpeg_install_error_handler(reinterpret_cast<j_common_ptr>(&cinfo), &err);
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed or half-made object
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

// Pillow's integer CMYK -> RGB (on libjpeg's Adobe-inverted CMYK), as torchvision.
inline uint8_t cmyk_channel(int k, int cmy) {
  int v = k * cmy + 128;
  v = ((v >> 8) + v) >> 8;
  return static_cast<uint8_t>(std::clamp(k - v, 0, 255));
}

void cmyk_row(const uint8_t* cmyk, int64_t n, int channels, uint8_t* const* planes) {
  for (int64_t i = 0; i < n; ++i) {
    const int c = cmyk[4 * i], m = cmyk[4 * i + 1], y = cmyk[4 * i + 2], k = cmyk[4 * i + 3];
    const int r = cmyk_channel(k, 255 - c), g = cmyk_channel(k, 255 - m), b = cmyk_channel(k, 255 - y);
    if (channels == 3) {
      planes[0][i] = static_cast<uint8_t>(r), planes[1][i] = static_cast<uint8_t>(g),
      planes[2][i] = static_cast<uint8_t>(b);
    } else {
      planes[0][i] = static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
    }
  }
}

// The EXIF orientation from the first APP1 segment holding EXIF, or 0.
int jpeg_orientation(j_decompress_ptr cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    return io::exif_orientation(m->data + 6, m->data_length - 6);
  }
  return 0;
}

// What the scanline loop needs; plain data, so it may live across a longjmp.
struct RowJob {
  int64_t y0, y1;         // output rows of the scaled image
  int64_t x0, x1;         // output columns of the scaled image
  int64_t x_request;      // first column asked of jpeg_crop_scanline (x0 less a margin)
  int64_t w_request;      // columns asked
  int components;         // components per pixel libjpeg writes
  int channels;           // output planes
  bool cmyk_convert;      // CMYK rows -> RGB or gray planes
  bool stream;            // non-temporal stores (large outputs)
  uint8_t* out;           // [channels, y1 - y0, x1 - x0]
  int64_t row_stride;     // bytes of one buffered row
  std::atomic<int64_t>* progress;  // rows done by the first thread (null: not shared)
};

// Starts decompression at scaled output row `first` (columns cropped as the job says);
// returns the column of x0 in the rows libjpeg writes.
int64_t start_rows(j_decompress_ptr cinfo, const RowJob& job, int64_t first) {
  jpeg_start_decompress(cinfo);
  JDIMENSION xoff = static_cast<JDIMENSION>(job.x_request), width = static_cast<JDIMENSION>(job.w_request);
  if (width < cinfo->output_width) jpeg_crop_scanline(cinfo, &xoff, &width);
  if (first > 0) jpeg_skip_scanlines(cinfo, static_cast<JDIMENSION>(first));
  return job.x0 - static_cast<int64_t>(xoff);  // crop_scanline rounds xoff down to an iMCU
}

// Decodes rows up to (not including) `stop` into the planes, through `buffer`.
void read_rows(j_decompress_ptr cinfo, const RowJob& job, int64_t skip_cols, int64_t stop, uint8_t* buffer) {
  const int64_t out_w = job.x1 - job.x0, plane = (job.y1 - job.y0) * out_w;
  JSAMPROW rows[kRowsPerRead];
  for (int r = 0; r < kRowsPerRead; ++r) rows[r] = buffer + r * job.row_stride;
  uint8_t* planes[4];
  while (cinfo->output_scanline < stop) {
    const int64_t y = cinfo->output_scanline;
    const JDIMENSION want = static_cast<JDIMENSION>(std::min<int64_t>(kRowsPerRead, stop - y));
    const JDIMENSION got = jpeg_read_scanlines(cinfo, rows, want);
    if (got == 0) io::jpeg_fail(reinterpret_cast<j_common_ptr>(cinfo), "Image is incomplete or truncated");
    for (JDIMENSION r = 0; r < got; ++r) {
      for (int c = 0; c < job.channels; ++c) planes[c] = job.out + c * plane + (y - job.y0 + r) * out_w;
      const uint8_t* src = rows[r] + skip_cols * job.components;
      if (job.cmyk_convert)
        cmyk_row(src, out_w, job.channels, planes);
      else if (job.stream)
        io::deinterleave_row_stream(src, out_w, job.channels, planes);
      else
        io::deinterleave_row(src, out_w, job.channels, planes);
    }
    if (job.progress) job.progress->store(y + got, std::memory_order_relaxed);
  }
  if (job.stream) io::store_fence();
}

// The raw path, for YCbCr files with 4:4:4, 4:2:2 or 4:2:0 sampling decoded to RGB at
// full size and full width from the top row (nearly every photo): libjpeg hands over
// the components as it decoded them (jpeg_read_raw_data), and the tier kernels upsample
// the chroma and convert to RGB straight into the planes with libjpeg's own arithmetic
// (kernels/cpu/ycc_rgb.h): no interleaved RGB rows, no copy into planes. libjpeg's
// upsampling and conversion cost ~1.3 ms of a 6 ms 1920x1920 decode; the kernels
// together with the copy they replace, ~0.4 ms.
bool raw_path_applies(j_decompress_ptr cinfo, const RowJob& job, int scale) {
  const int64_t W = cinfo->image_width;
  if (scale != 8 || job.cmyk_convert || job.channels != 3 || job.x0 != 0 || job.x1 != W || job.y0 != 0 || W < 16)
    return false;
  if (cinfo->jpeg_color_space != JCS_YCbCr || cinfo->out_color_space != JCS_RGB || cinfo->num_components != 3)
    return false;
  const jpeg_component_info* c = cinfo->comp_info;
  const int h = cinfo->max_h_samp_factor, v = cinfo->max_v_samp_factor;
  if (!((h == 1 && v == 1) || (h == 2 && v == 1) || (h == 2 && v == 2))) return false;
  if (c[0].h_samp_factor != h || c[0].v_samp_factor != v) return false;
  return c[1].h_samp_factor == 1 && c[1].v_samp_factor == 1 && c[2].h_samp_factor == 1 && c[2].v_samp_factor == 1;
}

// Three iMCU rows of the components (the one being emitted and its neighbours, whose
// chroma rows give the upsampling its context); emits output rows in order.
struct RawRows {
  static constexpr int kRing = 3;
  std::vector<uint8_t> store;            // the ring's sample rows
  std::vector<uint16_t> scratch;         // the row kernel's
  JSAMPROW rows[kRing][3][2 * DCTSIZE];  // [iMCU row % kRing][component][row]
  int luma_rows = 0;                     // output rows per iMCU row (8 or 16)
  bool h2 = false, v2 = false;
  int64_t width = 0, chroma_width = 0, chroma_height = 0;
  int64_t total_imcu = 0, read = 0, next_row = 0;

  // After configure() (the component sizes are known); no libjpeg calls.
  explicit RawRows(j_decompress_ptr cinfo) {
    const jpeg_component_info* c = cinfo->comp_info;
    luma_rows = cinfo->max_v_samp_factor * DCTSIZE;
    h2 = cinfo->max_h_samp_factor == 2;
    v2 = cinfo->max_v_samp_factor == 2;
    width = cinfo->image_width;
    chroma_width = c[1].downsampled_width;
    chroma_height = c[1].downsampled_height;
    total_imcu = (static_cast<int64_t>(cinfo->image_height) + luma_rows - 1) / luma_rows;
    int64_t pitch[3], per_ring = 0;
    for (int k = 0; k < 3; ++k) {
      pitch[k] = static_cast<int64_t>(c[k].width_in_blocks) * DCTSIZE;
      per_ring += pitch[k] * c[k].v_samp_factor * DCTSIZE;
    }
    store.resize(static_cast<std::size_t>(kRing * per_ring));
    uint8_t* p = store.data();
    for (int r = 0; r < kRing; ++r)
      for (int k = 0; k < 3; ++k)
        for (int i = 0; i < c[k].v_samp_factor * DCTSIZE; ++i, p += pitch[k]) rows[r][k][i] = p;
    scratch.resize(static_cast<std::size_t>(cpu::ycc_scratch_size(chroma_width)));
  }

  const uint8_t* chroma_row(int k, int64_t r) const {
    r = std::clamp<int64_t>(r, 0, chroma_height - 1);  // libjpeg repeats the edge rows
    return rows[(r / DCTSIZE) % kRing][k][r % DCTSIZE];
  }

  // Emits output rows up to `stop`, reading iMCU rows one ahead. Inside jpeg_guard.
  void emit(j_decompress_ptr cinfo, const RowJob& job, int64_t stop) {
    const cpu::KernelTable& kt = detail::cpu_kernels();
    const int64_t plane = (job.y1 - job.y0) * width;
    while (next_row < stop) {
      const int64_t imcu = next_row / luma_rows;
      for (; read <= std::min(imcu + 1, total_imcu - 1); ++read) {
        JSAMPARRAY data[3] = {rows[read % kRing][0], rows[read % kRing][1], rows[read % kRing][2]};
        if (jpeg_read_raw_data(cinfo, data, static_cast<JDIMENSION>(luma_rows)) == 0)
          io::jpeg_fail(reinterpret_cast<j_common_ptr>(cinfo), "Image is incomplete or truncated");
      }
      const int64_t end = std::min(stop, (imcu + 1) * luma_rows);
      for (; next_row < end; ++next_row) {
        const int64_t y = next_row;
        const int64_t cy = v2 ? y >> 1 : y, other = (y & 1) ? cy + 1 : cy - 1;
        cpu::YccRow row{rows[imcu % kRing][0][y % luma_rows], chroma_row(1, cy), chroma_row(2, cy)};
        if (v2) row.cb_far = chroma_row(1, other), row.cr_far = chroma_row(2, other);
        row.width = width;
        row.chroma_width = chroma_width;
        row.sampling = v2 ? cpu::ChromaSampling::H2V2 : h2 ? cpu::ChromaSampling::H2 : cpu::ChromaSampling::Full;
        uint8_t* planes[3] = {job.out + y * width, job.out + plane + y * width, job.out + 2 * plane + y * width};
        kt.ycc_to_rgb_row(row, planes, job.stream, scratch.data());
      }
      if (job.progress) job.progress->store(next_row, std::memory_order_relaxed);
    }
    if (job.stream) io::store_fence();
  }
};

// The decode settings, applied to each decompressor of one call.
struct Settings {
  J_COLOR_SPACE out_color_space;
  bool set_color;
  int scale;
};

// One libjpeg decompressor over the whole file: header read and settings applied.
// false: libjpeg raised (message in d.err).
bool open_decoder(Decompressor& d, const uint8_t* bytes, std::size_t n, bool save_app1) {
  j_decompress_ptr cinfo = &d.cinfo;
  return io::jpeg_guard(d.err, [&] {
    jpeg_create_decompress(cinfo);
    d.src.init_source = source_init;
    d.src.fill_input_buffer = source_fill;
    d.src.skip_input_data = source_skip;
    d.src.resync_to_restart = jpeg_resync_to_restart;
    d.src.term_source = source_term;
    d.src.next_input_byte = bytes;
    d.src.bytes_in_buffer = n;
    cinfo->src = &d.src;
    d.progress.progress_monitor = progress_monitor;
    cinfo->progress = &d.progress;
    if (save_app1) jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(cinfo, TRUE);
  });
}

bool configure(Decompressor& d, const Settings& s) {
  j_decompress_ptr cinfo = &d.cinfo;
  if (s.set_color) cinfo->out_color_space = s.out_color_space;
  cinfo->dct_method = JDCT_ISLOW;  // libjpeg's defaults, spelled out: torchvision's pixels
  // Scaled decodes (no torchvision counterpart) take libjpeg's merged upsampling: with
  // the jpeg62 API Debian ships, fancy upsampling at M/8 < 1 costs up to half the decode.
  cinfo->do_fancy_upsampling = s.scale == 8 ? TRUE : FALSE;
  cinfo->scale_num = static_cast<unsigned>(s.scale);
  cinfo->scale_denom = 8;
  return io::jpeg_guard(d.err, [&] { jpeg_calc_output_dimensions(cinfo); });
}

int imcu_rows(j_decompress_ptr cinfo) {
#if JPEG_LIB_VERSION >= 70
  return cinfo->max_v_samp_factor * cinfo->min_DCT_v_scaled_size;
#else
  return cinfo->max_v_samp_factor * cinfo->min_DCT_scaled_size;
#endif
}

[[noreturn]] void raise(const Decompressor& d, const char* stage) {
  detail::fail(ErrorKind::Value, "decode_jpeg: input: ", d.err.message[0] ? d.err.message : stage);
}

}  // namespace

#endif  // TVOPS_WITH_JPEG

std::string jpeg_library_version() {
#if !defined(TVOPS_WITH_JPEG)
  return "";
#elif defined(LIBJPEG_TURBO_VERSION)
#define TVOPS_STR2(x) #x
#define TVOPS_STR(x) TVOPS_STR2(x)
  return "libjpeg-turbo " TVOPS_STR(LIBJPEG_TURBO_VERSION);
#else
  return "libjpeg " + std::to_string(JPEG_LIB_VERSION);
#endif
}

Tensor decode_jpeg(const Tensor& data, ImageReadMode mode, bool apply_exif_orientation, const DecodeSize& size) {
  constexpr const char* op = "decode_jpeg";
  io::check_encoded(op, data);
  io::check_mode(op, mode);
  TVOPS_CHECK(mode == ImageReadMode::Unchanged || mode == ImageReadMode::Gray || mode == ImageReadMode::RGB, Value,
              op, ": mode: The provided mode is not supported for JPEG files (", static_cast<int>(mode),
              "; JPEG has no alpha: use UNCHANGED, GRAY or RGB)");
#if !defined(TVOPS_WITH_JPEG)
  (void)apply_exif_orientation, (void)size;
  detail::fail(ErrorKind::Unsupported, op, ": this build of tvops has no JPEG codec (libjpeg-turbo was not found "
               "when it was configured)");
#else
  (void)detail::cpu_kernels();  // the CPU check may throw: not from inside libjpeg

  const auto* bytes = data.data<uint8_t>();
  const auto nbytes = static_cast<std::size_t>(data.numel());
  Decompressor d;
  j_decompress_ptr cinfo = &d.cinfo;
  if (!open_decoder(d, bytes, nbytes, apply_exif_orientation)) raise(d, "corrupt header");
  io::check_pixels(op, cinfo->image_width, cinfo->image_height);
  const int orientation = apply_exif_orientation ? jpeg_orientation(cinfo) : 0;

  // torchvision's colour choices; libjpeg can't turn CMYK/YCCK into gray or RGB, so
  // those decode as CMYK and convert per pixel.
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  int channels = cinfo->num_components;
  Settings settings{JCS_UNKNOWN, false, 8};
  if (mode == ImageReadMode::Gray) {
    settings.out_color_space = cmyk ? JCS_CMYK : JCS_GRAYSCALE;
    settings.set_color = true;
    channels = 1;
  } else if (mode == ImageReadMode::RGB) {
    settings.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    settings.set_color = true;
    channels = 3;
  }
  TVOPS_CHECK(channels >= 1 && channels <= 4, Value, op, ": input: JPEG with ", channels,
              " components is not supported");

  const int64_t H = cinfo->image_height, W = cinfo->image_width;
  io::Region region{0, 0, H, W, 0, 0};
  if (!size.is_full()) region = io::stored_region(op, size, orientation, H, W);
  for (int m = 1; m < 8 && (region.min_height > 0 || region.min_width > 0); ++m) {
    int64_t b0, e0, b1, e1;  // the smallest M/8 that keeps the crop at least min_height x min_width
    io::scaled_span(H, region.top, region.height, m, b0, e0);
    io::scaled_span(W, region.left, region.width, m, b1, e1);
    if (e0 - b0 >= region.min_height && e1 - b1 >= region.min_width) {
      settings.scale = m;
      break;
    }
  }
  if (!configure(d, settings)) raise(d, "corrupt header");

  RowJob job{};
  io::scaled_span(H, region.top, region.height, settings.scale, job.y0, job.y1);
  io::scaled_span(W, region.left, region.width, settings.scale, job.x0, job.x1);
  const int64_t out_h = job.y1 - job.y0, out_w = job.x1 - job.x0;
  TVOPS_CHECK(out_h > 0 && out_w > 0, Value, op, ": size: the crop is empty at scale ", settings.scale, "/8");
  // Ask libjpeg for one iMCU more on each side so the crop's edge pixels get the same
  // upsampling context as in a full decode: cropped output equals full-decode pixels.
  const int64_t margin = static_cast<int64_t>(cinfo->max_h_samp_factor) * 8;
  const int64_t scaled_w = cinfo->output_width, scaled_h = cinfo->output_height;
  job.x_request = std::max<int64_t>(0, job.x0 - margin);
  job.w_request = std::min<int64_t>(scaled_w, job.x1 + margin) - job.x_request;
  job.components = cinfo->out_color_components;
  job.channels = channels;
  job.cmyk_convert = cmyk && channels != 4;
  TVOPS_CHECK(job.cmyk_convert ? job.components == 4 : job.components == channels, Value, op,
              ": input: unexpected colour layout (", job.components, " components for ", channels, " channels)");
  // Rows as wide as the scaled image: jpeg_crop_scanline may widen the request.
  job.row_stride = (scaled_w + 64) * job.components;
  // The whole image: finish decompression, which reads on to the EOI marker and so
  // raises on a truncated file, as torchvision does.
  const bool to_end = job.y1 == scaled_h;

  Tensor out = Tensor::empty({channels, out_h, out_w}, DType::UInt8);
  job.out = out.data<uint8_t>();
  job.stream = channels * out_h * out_w >= io::kStreamBytes;

  // Two threads on one baseline image: the first decodes the top rows; the second
  // entropy-decodes past them with jpeg_skip_scanlines (about 45% of the cost of
  // decoding them at full size) and decodes the rest. A split at ~63% balances the
  // two. If no second thread comes (busy pool, nested call), the first decodes on to
  // the end. Progressive files decode all scans up front, so they don't split.
  // The top rows take the raw path where it applies (RawRows); the second thread can't
  // (libjpeg skips scanlines only in its normal mode) and takes the normal one: same
  // pixels either way.
  const bool raw = raw_path_applies(cinfo, job, settings.scale);
  std::unique_ptr<RawRows> raw_rows;
  if (raw) raw_rows = std::make_unique<RawRows>(cinfo);
  const int imcu = imcu_rows(cinfo);
  int64_t split = job.y1;
  if (!cinfo->progressive_mode && !cinfo->buffered_image && settings.scale > 1 &&
      out_h * out_w >= (int64_t(1) << 17) && out_h >= 4 * imcu) {
    // Skipping is relatively dearer when scaled; at 1/8 it costs as much as decoding.
    const double share = raw ? 0.75 : settings.scale == 8 ? 0.63 : 0.66;
    split = job.y0 + static_cast<int64_t>(out_h * share);
    split = std::min<int64_t>(job.y1 - imcu, (split + imcu - 1) / imcu * imcu);
  }
  std::atomic<int> bottom{0};  // 0: unclaimed, 1: the first thread continues, 2: the second decodes it
  std::atomic<int64_t> progress{job.y0};
  job.progress = &progress;

  auto decode_top = [&] {
    std::vector<uint8_t> buffer(raw ? 0 : static_cast<std::size_t>(kRowsPerRead * job.row_stride));
    int64_t skip_cols = 0;
    auto rows_until = [&](int64_t stop) {
      if (raw)
        raw_rows->emit(cinfo, job, stop);
      else
        read_rows(cinfo, job, skip_cols, stop, buffer.data());
    };
    if (!io::jpeg_guard(d.err, [&] {
          if (raw) {
            cinfo->raw_data_out = TRUE;
            jpeg_start_decompress(cinfo);
          } else {
            skip_cols = start_rows(cinfo, job, job.y0);
          }
          rows_until(split);
        }))
      raise(d, "corrupt data");
    int expected = 0;
    const bool rest = split == job.y1 || bottom.compare_exchange_strong(expected, 1);
    if (!io::jpeg_guard(d.err, [&] {
          if (rest) rows_until(job.y1);
          if (rest && to_end)
            jpeg_finish_decompress(cinfo);
          else
            jpeg_abort_decompress(cinfo);
        }))
      raise(d, "corrupt data");
  };
  auto decode_bottom = [&] {
    // Started late (a busy pool): skipping the top would now cost more than the first
    // thread needs to finish it and go on, so leave the bottom to it.
    if (split == job.y1 || progress.load(std::memory_order_relaxed) - job.y0 > (split - job.y0) / 2) return;
    int expected = 0;
    if (!bottom.compare_exchange_strong(expected, 2)) return;
    Decompressor d2;
    j_decompress_ptr c2 = &d2.cinfo;
    if (!open_decoder(d2, bytes, nbytes, false) || !configure(d2, settings)) raise(d2, "corrupt header");
    std::vector<uint8_t> buffer(static_cast<std::size_t>(kRowsPerRead * job.row_stride));
    RowJob bottom_job = job;
    bottom_job.progress = nullptr;
    if (!io::jpeg_guard(d2.err, [&] {
          const int64_t skip_cols = start_rows(c2, bottom_job, split);
          read_rows(c2, bottom_job, skip_cols, job.y1, buffer.data());
          if (to_end)
            jpeg_finish_decompress(c2);
          else
            jpeg_abort_decompress(c2);
        }))
      raise(d2, "corrupt data");
  };
  if (split == job.y1) {
    decode_top();
  } else {
    detail::parallel_for(0, 2, 1, [&](int64_t lo, int64_t hi) {
      if (lo == 0) decode_top();
      if (hi == 2) decode_bottom();
    });
  }
  return io::apply_orientation(out, orientation);
#endif
}

}  // namespace tvops
