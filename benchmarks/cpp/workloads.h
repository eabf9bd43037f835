// PERF.md's standard inputs, generated the same way in every benchmark.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace tvops::bench {

// Random boxes: top-left uniform in [0,1000)^2, width and height in [4,204), fixed seed.
inline void random_boxes(int64_t n, std::vector<float>& boxes, std::vector<float>& scores, unsigned seed = 0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(0, 1000), size(4, 204), score(0, 1);
  boxes.resize(4 * n);
  scores.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    boxes[4 * i] = pos(rng);
    boxes[4 * i + 1] = pos(rng);
    boxes[4 * i + 2] = boxes[4 * i] + size(rng);
    boxes[4 * i + 3] = boxes[4 * i + 1] + size(rng);
    scores[i] = score(rng);
  }
}

}  // namespace tvops::bench
