#include "ops/score_order.h"

#include <algorithm>
#include <cmath>

namespace tvops::detail {

namespace {
template <typename T>
std::vector<int64_t> order_of(const T* s, int64_t n) {
  // Sort (key, index) pairs: cheaper than an index sort that chases pointers, and a
  // total order (NaN largest, index breaks ties) makes std::sort as good as stable.
  struct Item { T key; int64_t index; };
  std::vector<Item> items(n);
  for (int64_t i = 0; i < n; ++i) items[i] = {s[i], i};
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    const bool an = std::isnan(a.key), bn = std::isnan(b.key);
    if (an != bn) return an;
    if (!an && a.key != b.key) return a.key > b.key;
    return a.index < b.index;
  });
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = items[i].index;
  return order;
}
}  // namespace

std::vector<int64_t> descending_order(const Tensor& scores) {
  if (scores.dtype() == DType::Float64) return order_of(scores.data<double>(), scores.numel());
  return order_of(scores.data<float>(), scores.numel());
}

}  // namespace tvops::detail
