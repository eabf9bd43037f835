#include "ops/score_order.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace tvops::detail {

namespace {

// float32: a stable LSD radix sort on keys whose unsigned order is the descending
// score order (NaN first, +0 == -0), so ties stay in index order. ~20x faster than
// a comparison sort at detection sizes. Each item is one 64-bit word, key above index
// (below 2^32 items), so a pass moves 8 bytes an item in one store; the three digit
// histograms are counted in the pass that makes the keys, and the last pass writes the
// indices straight into the result.
UninitVector<int64_t> order_f32(const float* s, int64_t n) {
  constexpr int kBits = 11, kBuckets = 1 << kBits, kPasses = 3;  // 33 bits >= 32
  UninitVector<int64_t> order(n);
  if (n >= (int64_t(1) << 32)) {  // indices need more than 32 bits: a comparison sort
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      const float x = s[a], y = s[b];
      return (std::isnan(x) && !std::isnan(y)) || x > y;
    });
    return order;
  }
  UninitVector<uint64_t> items(n), items2(n);
  std::vector<int64_t> count(kPasses * (kBuckets + 1), 0);
  for (int64_t i = 0; i < n; ++i) {
    float v = s[i] == 0.0f ? 0.0f : s[i];  // -0 -> +0
    uint32_t b;
    std::memcpy(&b, &v, 4);
    const uint32_t ascending = std::isnan(v) ? 0xffffffffu : (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    const uint32_t key = ~ascending;  // descending
    items[i] = (uint64_t(key) << 32) | uint64_t(i);
    for (int pass = 0; pass < kPasses; ++pass)
      ++count[pass * (kBuckets + 1) + ((key >> (pass * kBits)) & (kBuckets - 1)) + 1];
  }
  int last = -1;  // the last pass that moves anything
  for (int pass = 0; pass < kPasses; ++pass) {
    const int64_t* c = count.data() + pass * (kBuckets + 1);
    if (c[((items[0] >> (32 + pass * kBits)) & (kBuckets - 1)) + 1] != n) last = pass;
  }
  for (int pass = 0; pass <= last; ++pass) {
    int64_t* c = count.data() + pass * (kBuckets + 1);
    const int shift = 32 + pass * kBits;
    if (c[((items[0] >> shift) & (kBuckets - 1)) + 1] == n) continue;  // one bucket: nothing moves
    for (int b = 0; b < kBuckets; ++b) c[b + 1] += c[b];
    if (pass == last) {
      for (int64_t i = 0; i < n; ++i) order[c[(items[i] >> shift) & (kBuckets - 1)]++] = int64_t(items[i] & 0xffffffffu);
      return order;
    }
    for (int64_t i = 0; i < n; ++i) items2[c[(items[i] >> shift) & (kBuckets - 1)]++] = items[i];
    items.swap(items2);
  }
  for (int64_t i = 0; i < n; ++i) order[i] = int64_t(items[i] & 0xffffffffu);  // all scores equal
  return order;
}

// float64: (key, index) pairs with a total order (NaN largest, index breaks ties),
// so std::sort gives the stable order.
UninitVector<int64_t> order_f64(const double* s, int64_t n) {
  struct Item { double key; int64_t index; };
  std::vector<Item> items(n);
  for (int64_t i = 0; i < n; ++i) items[i] = {s[i], i};
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    const bool an = std::isnan(a.key), bn = std::isnan(b.key);
    if (an != bn) return an;
    if (!an && a.key != b.key) return a.key > b.key;
    return a.index < b.index;
  });
  UninitVector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = items[i].index;
  return order;
}

}  // namespace

UninitVector<int64_t> descending_order(const Tensor& scores) {
  if (scores.numel() == 0) return {};
  if (scores.dtype() == DType::Float64) return order_f64(scores.data<double>(), scores.numel());
  return order_f32(scores.data<float>(), scores.numel());
}

}  // namespace tvops::detail
