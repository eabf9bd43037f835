// Scratch arrays for per-tier kernels. std::vector<float> and friends would be
// instantiated in every tier with that tier's flags, and the linker keeps one copy for
// the whole library: baseline code could then run an AVX-512 copy. This type has
// internal linkage inside the tier namespace, so each tier keeps its own.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {
namespace {

template <typename T>  // trivially copyable T only
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t n, T value = T()) { assign(n, value); }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    void* p = std::realloc(data_, n * sizeof(T));
    if (!p) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
    capacity_ = n;
  }
  void assign(std::size_t n, T value) {
    reserve(n);
    for (std::size_t i = 0; i < n; ++i) data_[i] = value;
    size_ = n;
  }
  void push_back(T value) {
    if (size_ == capacity_) reserve(capacity_ ? 2 * capacity_ : 64);
    data_[size_++] = value;
  }
  void clear() { size_ = 0; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace
}  // namespace tvops::cpu::TVOPS_CPU_TIER
