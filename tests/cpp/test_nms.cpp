// nms on every CPU ISA tier this machine runs, against a plain greedy NMS written
// here (in double, and in float for float32 boxes).
#include <gtest/gtest.h>
#include <tvops/tvops.h>

#include "per_isa.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace {

// torchvision's loop in T (its arithmetic for T boxes); the quotient is compared in
// double, as torchvision compares it with the double threshold.
template <typename T>
std::vector<int64_t> reference_nms(const std::vector<T>& b, const std::vector<T>& s, double thr) {
  const int64_t n = static_cast<int64_t>(s.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
  std::vector<bool> removed(n, false);
  std::vector<int64_t> keep;
  for (int64_t a = 0; a < n; ++a) {
    const int64_t i = order[a];
    if (removed[i]) continue;
    keep.push_back(i);
    const T ai = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
    for (int64_t c = a + 1; c < n; ++c) {
      const int64_t j = order[c];
      const T aj = (b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1]);
      const T w = std::max(T(0), std::min(b[4 * i + 2], b[4 * j + 2]) - std::max(b[4 * i], b[4 * j]));
      const T h = std::max(T(0), std::min(b[4 * i + 3], b[4 * j + 3]) - std::max(b[4 * i + 1], b[4 * j + 1]));
      const T inter = w * h;
      if (static_cast<double>(inter / (ai + aj - inter)) > thr) removed[j] = true;
    }
  }
  return keep;
}

void random_boxes(int64_t n, unsigned seed, std::vector<double>& b, std::vector<double>& s) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> pos(0, 1000), size(4, 204), score(0, 1);
  b.resize(4 * n);
  s.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    b[4 * i] = pos(rng);
    b[4 * i + 1] = pos(rng);
    b[4 * i + 2] = b[4 * i] + size(rng);
    b[4 * i + 3] = b[4 * i + 1] + size(rng);
    s[i] = score(rng);
  }
}

std::vector<int64_t> run(const std::vector<double>& b, const std::vector<double>& s, double thr) {
  auto bt = tvops::Tensor::from_blob(const_cast<double*>(b.data()), {int64_t(s.size()), 4}, {},
                                     tvops::DType::Float64, {});
  auto st = tvops::Tensor::from_blob(const_cast<double*>(s.data()), {int64_t(s.size())}, {},
                                     tvops::DType::Float64, {});
  tvops::Tensor k = tvops::nms(bt, st, thr);
  return std::vector<int64_t>(k.data<int64_t>(), k.data<int64_t>() + k.numel());
}

class NmsPerIsa : public tvops::testing::PerIsa {};

// Up to 512 boxes, mostly kept: the kernel scans kept boxes by buckets of x centre.
TEST_P(NmsPerIsa, Float32SpreadBoxesMatchFloatReference) {
  for (double thr : {0.1, 0.5, 0.8}) {
    for (int64_t n : {100, 512}) {
      std::vector<double> bd, sd;
      random_boxes(n, static_cast<unsigned>(n * 17 + thr * 10), bd, sd);
      const std::vector<float> b(bd.begin(), bd.end()), s(sd.begin(), sd.end());
      auto bt = tvops::Tensor::from_blob(const_cast<float*>(b.data()), {n, 4}, {}, tvops::DType::Float32, {});
      auto st = tvops::Tensor::from_blob(const_cast<float*>(s.data()), {n}, {}, tvops::DType::Float32, {});
      tvops::Tensor k = tvops::nms(bt, st, thr);
      EXPECT_EQ(std::vector<int64_t>(k.data<int64_t>(), k.data<int64_t>() + k.numel()), reference_nms(b, s, thr))
          << "n=" << n << " thr=" << thr;
    }
  }
}

TEST_P(NmsPerIsa, MatchesReferenceOnRandomBoxes) {
  for (double thr : {0.0, 0.3, 0.5, 0.7, 0.95}) {
    for (int64_t n : {1, 2, 17, 300, 2000}) {
      std::vector<double> b, s;
      random_boxes(n, static_cast<unsigned>(n * 31 + thr * 100), b, s);
      EXPECT_EQ(run(b, s, thr), reference_nms(b, s, thr)) << "n=" << n << " thr=" << thr;
    }
  }
}

TEST_P(NmsPerIsa, TiesKeepIndexOrder) {
  std::vector<double> b = {0, 0, 10, 10, 0, 0, 10, 10, 100, 100, 110, 110, 100, 100, 110, 110};
  std::vector<double> s = {0.5, 0.5, 0.5, 0.5};
  EXPECT_EQ(run(b, s, 0.5), (std::vector<int64_t>{0, 2}));
}

TEST_P(NmsPerIsa, DegenerateBoxesAreNeverSuppressed) {
  // Zero-area and inverted boxes: IoU is 0 or NaN, never above the threshold.
  std::vector<double> b = {5, 5, 5, 5, 5, 5, 5, 5, 10, 10, 0, 0, 0, 0, 10, 10};
  std::vector<double> s = {0.9, 0.8, 0.7, 0.6};
  EXPECT_EQ(run(b, s, 0.1), (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST_P(NmsPerIsa, NegativeThresholdSuppressesAllButTheBest) {
  std::vector<double> b, s;
  random_boxes(50, 7, b, s);
  EXPECT_EQ(run(b, s, -0.5), reference_nms(b, s, -0.5));
}

// batched_nms = the reference nms run per category, merged in score order. Both of
// torchvision's strategies (offset trick up to 1000 boxes, per class above) must give it
// when coordinates are non-negative and scores distinct.
TEST_P(NmsPerIsa, BatchedMatchesPerCategoryReference) {
  for (int64_t n : {50, 1000, 1001, 4000}) {
    std::vector<double> b, s;
    random_boxes(n, static_cast<unsigned>(n), b, s);
    std::vector<int64_t> cat(n);
    for (int64_t i = 0; i < n; ++i) cat[i] = (i * 7919) % 13 - 3;  // includes negative categories
    std::vector<int64_t> expected;
    for (int64_t c = -3; c < 10; ++c) {
      std::vector<double> cb, cs;
      std::vector<int64_t> members;
      for (int64_t i = 0; i < n; ++i)
        if (cat[i] == c) {
          members.push_back(i);
          cs.push_back(s[i]);
          cb.insert(cb.end(), b.begin() + 4 * i, b.begin() + 4 * i + 4);
        }
      for (int64_t k : reference_nms(cb, cs, 0.5)) expected.push_back(members[k]);
    }
    std::sort(expected.begin(), expected.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
    auto bt = tvops::Tensor::from_blob(b.data(), {n, 4}, {}, tvops::DType::Float64, {});
    auto st = tvops::Tensor::from_blob(s.data(), {n}, {}, tvops::DType::Float64, {});
    auto ct = tvops::Tensor::from_blob(cat.data(), {n}, {}, tvops::DType::Int64, {});
    // The offset trick shifts categories by idx * (max + 1): negative ids make it
    // undefined, so compare the per-class path with them and the trick without.
    if (n <= 1000)
      for (auto& c : cat) c += 3;
    tvops::Tensor k = tvops::batched_nms(bt, st, ct, 0.5);
    EXPECT_EQ(std::vector<int64_t>(k.data<int64_t>(), k.data<int64_t>() + k.numel()), expected) << "n=" << n;
  }
}

TVOPS_INSTANTIATE_PER_ISA(NmsPerIsa);

TEST(Nms, BadShapesThrowNamingTheArgument) {
  std::vector<float> data(12, 0.f);
  auto b3 = tvops::Tensor::from_blob(data.data(), {1, 3, 4}, {}, tvops::DType::Float32, {});
  auto b5 = tvops::Tensor::from_blob(data.data(), {2, 5}, {}, tvops::DType::Float32, {});
  auto b = tvops::Tensor::from_blob(data.data(), {3, 4}, {}, tvops::DType::Float32, {});
  auto s = tvops::Tensor::from_blob(data.data(), {3}, {}, tvops::DType::Float32, {});
  auto s2 = tvops::Tensor::from_blob(data.data(), {2}, {}, tvops::DType::Float32, {});
  auto sd = tvops::Tensor::from_blob(data.data(), {3}, {}, tvops::DType::Float64, {});
  auto bi = tvops::Tensor::from_blob(data.data(), {3, 4}, {}, tvops::DType::Int32, {});
  auto expect_error = [](auto fn, const char* text) {
    try {
      fn();
      ADD_FAILURE() << "no error for " << text;
    } catch (const tvops::Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expect_error([&] { tvops::nms(b3, s, 0.5); }, "boxes should be a 2d tensor, got 3D");
  expect_error([&] { tvops::nms(b5, s, 0.5); }, "boxes should have 4 elements in dimension 1, got 5");
  expect_error([&] { tvops::nms(b, b, 0.5); }, "scores should be a 1d tensor, got 2D");
  expect_error([&] { tvops::nms(b, s2, 0.5); }, "same number of elements in dimension 0, got 3 and 2");
  expect_error([&] { tvops::nms(b, sd, 0.5); }, "boxes should have the same type as scores");
  expect_error([&] { tvops::nms(bi, s, 0.5); }, "boxes must be a floating point tensor");
}

TEST(Nms, EmptyInputGivesEmptyInt64) {
  auto b = tvops::Tensor::from_blob(nullptr, {0, 4}, {}, tvops::DType::Float32, {});
  auto s = tvops::Tensor::from_blob(nullptr, {0}, {}, tvops::DType::Float32, {});
  tvops::Tensor k = tvops::nms(b, s, 0.5);
  EXPECT_EQ(k.numel(), 0);
  EXPECT_EQ(k.dtype(), tvops::DType::Int64);
}

}  // namespace
