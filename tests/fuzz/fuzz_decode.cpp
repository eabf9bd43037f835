// Mutation fuzzer for tvops' image decoders. Seeds: the files of a corpus folder
// (tests/fuzz/make_corpus.py writes real photos re-encoded in many JPEG and PNG
// variants) plus images this program encodes itself. Each round mutates a seed
// (bit flips, interesting values in length and size fields, truncation, insertion,
// deletion, splicing, PNG CRCs recomputed so damage reaches zlib and the filters)
// and decodes it with a random mode, EXIF flag and decode size. A decoder may only
// return a sane image or throw tvops::Error; under the asan preset, AddressSanitizer
// and LeakSanitizer catch memory errors and leaks.
//
//   tvops_fuzz_decode [corpus_dir [seconds]]
// TVOPS_FUZZ_SECONDS in the environment overrides the seconds (default 10);
// TVOPS_FUZZ_SEED repeats a run.
#include <tvops/tvops.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <random>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<uint8_t>;

tvops::Tensor as_tensor(const Bytes& b) {
  tvops::Tensor t = tvops::Tensor::empty({static_cast<int64_t>(b.size())}, tvops::DType::UInt8);
  if (!b.empty()) std::memcpy(t.data_ptr(), b.data(), b.size());
  return t;
}

Bytes to_bytes(const tvops::Tensor& t) {
  const auto* p = t.data<uint8_t>();
  return Bytes(p, p + t.numel());
}

std::vector<Bytes> read_corpus(const std::string& dir) {
  std::vector<Bytes> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::FILE* f = std::fopen((dir + "/" + e->d_name).c_str(), "rb");
    if (!f) continue;
    Bytes b;
    uint8_t buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) b.insert(b.end(), buf, buf + n);
    std::fclose(f);
    if (!b.empty()) out.push_back(std::move(b));
  }
  closedir(d);
  return out;
}

// Seeds of our own: gradients and noise through tvops' encoders.
std::vector<Bytes> own_seeds(std::mt19937& rng) {
  std::vector<Bytes> out;
  const int64_t sizes[][2] = {{1, 1}, {7, 13}, {48, 64}, {97, 131}, {512, 512}};
  for (auto& hw : sizes) {
    for (int64_t c : {1, 2, 3, 4}) {
      tvops::Tensor img = tvops::Tensor::empty({c, hw[0], hw[1]}, tvops::DType::UInt8);
      auto* p = img.data<uint8_t>();
      for (int64_t i = 0; i < img.numel(); ++i) p[i] = static_cast<uint8_t>((i * 7 + (i / hw[1]) * 3) ^ (rng() & 15));
      out.push_back(to_bytes(tvops::encode_png(img, static_cast<int64_t>(rng() % 10))));
      if (c == 1 || c == 3) out.push_back(to_bytes(tvops::encode_jpeg(img, 1 + static_cast<int64_t>(rng() % 100))));
    }
    tvops::Tensor wide = tvops::Tensor::empty({3, hw[0], hw[1]}, tvops::DType::UInt16);
    auto* q = wide.data<uint16_t>();
    for (int64_t i = 0; i < wide.numel(); ++i) q[i] = static_cast<uint16_t>(i * 2654435761u);
    out.push_back(to_bytes(tvops::encode_png(wide, 6)));
  }
  return out;
}

uint32_t crc32(const uint8_t* p, std::size_t n) {
  static uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// Rewrites every complete PNG chunk's CRC, so mutations get past the CRC check.
void fix_png_crcs(Bytes& b) {
  std::size_t at = 8;
  while (at + 12 <= b.size()) {
    const uint32_t n = uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
    if (n > b.size() - at - 12) break;
    const uint32_t c = crc32(&b[at + 4], n + 4);
    for (int k = 0; k < 4; ++k) b[at + 8 + n + k] = static_cast<uint8_t>(c >> (24 - 8 * k));
    at += 12 + n;
  }
}

bool is_png(const Bytes& b) { return b.size() >= 8 && b[0] == 0x89 && b[1] == 'P'; }

void mutate(Bytes& b, const std::vector<Bytes>& seeds, std::mt19937& rng) {
  auto pick = [&](std::size_t n) { return n ? static_cast<std::size_t>(rng() % n) : 0; };
  // JPEG: most damage after the scan header, where the entropy decoder reads.
  std::size_t lo = 0;
  if (!is_png(b) && rng() % 2) {
    for (std::size_t i = 0; i + 1 < b.size(); ++i)
      if (b[i] == 0xFF && b[i + 1] == 0xDA) lo = i;
  }
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds && !b.empty(); ++r) {
    const std::size_t at = lo + pick(b.size() - lo);
    switch (rng() % 9) {
      case 0: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
      case 1: {
        static const uint8_t vals[] = {0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0xD9, 0xDA, 0xC0};
        b[at] = vals[rng() % sizeof(vals)];
        break;
      }
      case 2: b.resize(at); break;
      case 3: {  // a big-endian 16/32-bit field: lengths and image sizes
        static const uint32_t vals[] = {0, 1, 2, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 65500, 65501, 16384};
        const uint32_t v = vals[rng() % (sizeof(vals) / 4)];
        const int width = rng() % 2 ? 2 : 4;
        for (int k = 0; k < width && at + k < b.size(); ++k) b[at + k] = static_cast<uint8_t>(v >> (8 * (width - 1 - k)));
        break;
      }
      case 4: {
        const std::size_t n = 1 + pick(64);
        Bytes junk(n);
        for (auto& x : junk) x = static_cast<uint8_t>(rng());
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), junk.begin(), junk.end());
        break;
      }
      case 5: {
        const std::size_t n = std::min(b.size() - at, 1 + pick(256));
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 6: {  // duplicate a range (repeated markers, chunks, scans)
        const std::size_t n = std::min(b.size() - at, 1 + pick(512));
        Bytes dup(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), dup.begin(), dup.end());
        break;
      }
      case 7: {  // splice: our head, another seed's tail
        const Bytes& other = seeds[pick(seeds.size())];
        const std::size_t from = pick(other.size());
        b.resize(at);
        b.insert(b.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        break;
      }
      default:
        for (int k = 0; k < 8; ++k) b[lo + pick(b.size() - lo)] = static_cast<uint8_t>(rng());
    }
  }
  if (is_png(b) && rng() % 4 != 0) fix_png_crcs(b);
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_seconds = std::getenv("TVOPS_FUZZ_SECONDS");
  const double seconds = env_seconds && *env_seconds ? std::atof(env_seconds) : argc > 2 ? std::atof(argv[2]) : 10.0;
  const char* env_seed = std::getenv("TVOPS_FUZZ_SEED");
  const uint32_t seed = env_seed && *env_seed ? static_cast<uint32_t>(std::strtoul(env_seed, nullptr, 10))
                                              : static_cast<uint32_t>(std::random_device{}());
  std::mt19937 rng(seed);
  if (tvops::jpeg_library_version().empty() || tvops::png_library_version().empty()) {
    std::printf("fuzz_decode: this build has no JPEG/PNG codec; nothing to fuzz\n");
    return 0;
  }
  // Refuse large claimed sizes quickly (a mutated 16-bit height field is common);
  // the real seeds stay below this.
  tvops::set_max_image_pixels(int64_t(1) << 22);
  std::vector<Bytes> seeds = argc > 1 ? read_corpus(argv[1]) : std::vector<Bytes>{};
  const std::size_t from_corpus = seeds.size();
  for (Bytes& b : own_seeds(rng)) seeds.push_back(std::move(b));
  std::printf("fuzz_decode: %zu seeds (%zu from %s), %.0f s, seed %u (TVOPS_FUZZ_SEED=%u reproduces)\n",
              seeds.size(), from_corpus, argc > 1 ? argv[1] : "-", seconds, seed, seed);
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  long rounds = 0, decoded = 0, rejected = 0, failures = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    Bytes b = seeds[rng() % seeds.size()];
    if (rng() % 16 != 0) mutate(b, seeds, rng);
    const auto mode = static_cast<tvops::ImageReadMode>(rng() % 5);
    const bool exif = rng() % 2;
    tvops::DecodeSize size;
    if (rng() % 4 == 0) {
      size.min_height = rng() % 64, size.min_width = rng() % 64;
      if (rng() % 2) size.crop_top = rng() % 8, size.crop_left = rng() % 8, size.crop_height = 1 + rng() % 16,
                     size.crop_width = 1 + rng() % 16;
    }
    ++rounds;
    try {
      const tvops::Tensor data = as_tensor(b);
      tvops::Tensor out;
      switch (rng() % 4) {
        case 0: out = tvops::decode_jpeg(data, mode, exif, size); break;
        case 1: out = tvops::decode_png(data, mode, exif, size); break;
        default: out = tvops::decode_image(data, mode, exif, size);
      }
      if (out.dim() != 3 || out.size(0) < 1 || out.size(0) > 4 || out.size(1) < 1 || out.size(2) < 1 ||
          !out.is_contiguous()) {
        std::printf("FAIL round %ld: bad output %s\n", rounds, out.describe().c_str());
        ++failures;
      }
      ++decoded;
      if (rng() % 8 == 0 && out.dtype() == tvops::DType::UInt8 && (out.size(0) == 1 || out.size(0) == 3))
        (void)tvops::encode_jpeg(out, 1 + rng() % 100);
    } catch (const tvops::Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      std::printf("FAIL round %ld: %s (not a tvops::Error)\n", rounds, e.what());
      ++failures;
    }
  }
  std::printf("fuzz_decode: %ld rounds, %ld decoded, %ld rejected with tvops::Error, %ld failures\n", rounds, decoded,
              rejected, failures);
  return failures == 0 ? 0 : 1;
}
