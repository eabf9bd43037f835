// Output memory from a Python callable, so the tensors tvops returns to torch live in
// torch's CUDA caching allocator (on the stream the op runs on) instead of a pool torch
// can't see. torchvision_native._torch puts one in scope around each CUDA kernel call
// with set_thread_allocator(); the bindings pick it up through call_context().
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>

#include "call_context.h"

namespace py = pybind11;

namespace {

bool python_alive() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsInitialized() && !Py_IsFinalizing();
#else
  return Py_IsInitialized() && !_Py_IsFinalizing();
#endif
}

class PyAllocator final : public tvops::Allocator {
 public:
  // allocate(nbytes, device_index) -> a contiguous uint8 CUDA tensor of nbytes bytes.
  explicit PyAllocator(py::function allocate) : allocate_(std::move(allocate)) {}

  std::shared_ptr<void> allocate(std::size_t bytes, tvops::Device device, void* /*stream*/) const override {
    if (!device.is_cuda()) return tvops::Tensor::empty({static_cast<int64_t>(bytes)}, tvops::DType::UInt8).owner();
    py::gil_scoped_acquire gil;
    py::object tensor = allocate_(bytes, device.index);
    auto* data = reinterpret_cast<void*>(tensor.attr("data_ptr")().cast<uintptr_t>());
    PyObject* owner = tensor.release().ptr();
    // The last tvops or torch view may die on any thread (autograd's, a DataLoader's):
    // take the GIL to drop the reference; at interpreter shutdown leak it instead.
    return std::shared_ptr<void>(data, [owner](void*) {
      if (!python_alive()) return;
      py::gil_scoped_acquire release_gil;
      Py_DECREF(owner);
    });
  }

 private:
  py::function allocate_;
};

thread_local const tvops::Allocator* t_allocator = nullptr;

}  // namespace

tvops::Context call_context(uintptr_t stream) {
  tvops::Context ctx;
  ctx.cuda_stream = reinterpret_cast<void*>(stream);
  ctx.allocator = t_allocator;
  return ctx;
}

void bind_allocator(py::module_& m) {
  // Held by torchvision_native._torch for the life of the process (never freed before exit).
  py::class_<PyAllocator>(m, "Allocator", "Output memory from a Python callable (nbytes, device) -> uint8 tensor.")
      .def(py::init<py::function>(), py::arg("allocate"));
  m.def("set_thread_allocator", [](const PyAllocator* allocator) { t_allocator = allocator; },
        py::arg("allocator").none(true),
        "Puts an Allocator (or None: tvops' own) in scope for this thread's calls.");
}
