// torchvision_native._C: the pybind11 bindings of libtvops. Tensors cross as
// DLPack capsules (zero-copy); python/torchvision_native wraps these functions
// with torchvision's signatures and converts torch tensors and numpy arrays.
#include <Python.h>
#include <dlpack/dlpack.h>
#include <optional>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "call_context.h"
#include "tvops/tvops.h"

namespace py = pybind11;

void bind_io(py::module_& m);         // io_bindings.cpp
void bind_allocator(py::module_& m);  // torch_allocator.cpp

namespace {

constexpr const char* kCapsule = "dltensor";
constexpr const char* kUsedCapsule = "used_dltensor";

// Consumes a "dltensor" capsule (renaming it so its producer won't free it twice).
tvops::Tensor from_capsule(const py::capsule& capsule) {
  PyObject* obj = capsule.ptr();
  if (!PyCapsule_IsValid(obj, kCapsule))
    throw py::value_error("expected a DLPack capsule named 'dltensor' (already consumed, or not DLPack)");
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(obj, kCapsule));
  PyCapsule_SetName(obj, kUsedCapsule);
  return tvops::Tensor::from_dlpack(managed);
}

void delete_unconsumed_capsule(PyObject* obj) {
  if (PyCapsule_IsValid(obj, kCapsule)) {
    auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(obj, kCapsule));
    if (managed && managed->deleter) managed->deleter(managed);
  } else {
    PyErr_Clear();
  }
}

py::capsule to_capsule(const tvops::Tensor& t) {
  DLManagedTensor* managed = t.to_dlpack();
  PyObject* obj = PyCapsule_New(managed, kCapsule, delete_unconsumed_capsule);
  if (!obj) {
    managed->deleter(managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(obj);
}

py::dict build_info_dict() {
  const tvops::BuildInfo& b = tvops::build_info();
  py::dict d;
  d["version"] = b.version;
  d["variant"] = b.variant;
  d["host_arch"] = b.host_arch;
  d["cpu_isas"] = b.cpu_isas;
  d["cuda_archs"] = b.cuda_archs;
  d["cuda_version"] = b.cuda_version;
  d["compiler"] = b.compiler;
  d["build_type"] = b.build_type;
  d["git_revision"] = b.git_revision;
  d["jpeg"] = tvops::jpeg_library_version();  // "" without the codec
  d["png"] = tvops::png_library_version();
  d["nvjpeg"] = tvops::has_nvjpeg();
  return d;
}

py::dict cpu_features_dict() {
  const tvops::CpuFeatures& f = tvops::cpu_features();
  py::dict d;
  d["arch"] = f.arch;
  d["model"] = f.model;
  d["logical_cores"] = f.logical_cores;
  for (auto [name, value] : std::initializer_list<std::pair<const char*, bool>>{
           {"avx2", f.avx2}, {"fma", f.fma}, {"f16c", f.f16c}, {"avx512f", f.avx512f}, {"avx512dq", f.avx512dq},
           {"avx512vl", f.avx512vl}, {"avx512bw", f.avx512bw}, {"avx512bf16", f.avx512bf16},
           {"avx512vnni", f.avx512vnni}, {"asimd", f.asimd}, {"asimddp", f.asimddp}, {"asimdhp", f.asimdhp},
           {"sve", f.sve}, {"sve2", f.sve2}})
    d[name] = value;
  return d;
}

// The Python exception types for tvops::Error kinds (set once at module init).
PyObject* g_error = nullptr;
PyObject* g_value_error = nullptr;
PyObject* g_type_error = nullptr;

void translate_error(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const tvops::Error& e) {
    PyObject* type = e.kind() == tvops::ErrorKind::Value ? g_value_error
                     : e.kind() == tvops::ErrorKind::Type ? g_type_error
                                                          : g_error;
    PyErr_SetString(type, e.what());
  }
}

PyObject* make_exception(py::module_& m, const char* name, PyObject* bases, const char* doc) {
  std::string qualified = std::string("torchvision_native.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (!type) throw py::error_already_set();
  m.add_object(name, py::handle(type));
  return type;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Native kernels of torchvision_native (libtvops bindings)";

  // tvops::Error -> TvopsError (a RuntimeError, as torchvision raises), with
  // ValueError / TypeError flavours so callers can catch either way.
  g_error = make_exception(m, "TvopsError", PyExc_RuntimeError, "An error raised by tvops.");
  PyObject* value_bases = PyTuple_Pack(2, g_error, PyExc_ValueError);
  PyObject* type_bases = PyTuple_Pack(2, g_error, PyExc_TypeError);
  g_value_error = make_exception(m, "TvopsValueError", value_bases, "Bad argument value or shape.");
  g_type_error = make_exception(m, "TvopsTypeError", type_bases, "Bad argument dtype.");
  Py_DECREF(value_bases);
  Py_DECREF(type_bases);
  py::register_exception_translator(&translate_error);

  py::class_<tvops::Tensor>(m, "Tensor", "A tvops tensor; hand it to torch.from_dlpack or numpy.from_dlpack.")
      .def_static("from_dlpack", &from_capsule, py::arg("capsule"))
      .def("to_capsule", &to_capsule)
      .def("__dlpack__", [](const tvops::Tensor& t, py::object /*stream*/, py::object /*max_version*/,
                            py::object /*dl_device*/, py::object /*copy*/) { return to_capsule(t); },
           py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
           py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const tvops::Tensor& t) {
        return py::make_tuple(t.device().is_cpu() ? int(kDLCPU) : int(kDLCUDA), t.device().index);
      })
      .def_property_readonly("shape", [](const tvops::Tensor& t) { return py::tuple(py::cast(t.sizes())); })
      .def_property_readonly("dtype", [](const tvops::Tensor& t) { return std::string(tvops::dtype_name(t.dtype())); })
      .def_property_readonly("device", [](const tvops::Tensor& t) { return tvops::device_name(t.device()); })
      // (data pointer, bytes, contiguous, dtype, shape) in one call: how torchvision_native._torch
      // finds the caching-allocator block under a CUDA output without a DLPack round trip.
      .def_property_readonly("memory", [](const tvops::Tensor& t) {
        return py::make_tuple(reinterpret_cast<uintptr_t>(t.data_ptr()), t.nbytes(), t.is_contiguous(),
                              tvops::dtype_name(t.dtype()), py::tuple(py::cast(t.sizes())));
      })
      .def("__repr__", [](const tvops::Tensor& t) { return "<tvops.Tensor " + t.describe() + ">"; });

  m.def("nms", [](const tvops::Tensor& boxes, const tvops::Tensor& scores, double iou_threshold, uintptr_t stream) {
        const tvops::Context ctx = call_context(stream);
        py::gil_scoped_release release;
        return tvops::nms(boxes, scores, iou_threshold, ctx);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"), py::arg("stream") = 0);

  m.def("batched_nms", [](const tvops::Tensor& boxes, const tvops::Tensor& scores, const tvops::Tensor& idxs,
                          double iou_threshold, uintptr_t stream) {
        const tvops::Context ctx = call_context(stream);
        py::gil_scoped_release release;
        return tvops::batched_nms(boxes, scores, idxs, iou_threshold, ctx);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("idxs"), py::arg("iou_threshold"), py::arg("stream") = 0);

  // Box utilities: `stream` as for nms (CUDA float32/float64 boxes).
  auto on_stream = [](uintptr_t stream) { return call_context(stream); };
  m.def("box_convert", [on_stream](const tvops::Tensor& boxes, const std::string& in_fmt, const std::string& out_fmt,
                                   uintptr_t stream) {
    const auto in = tvops::box_format_from_string(in_fmt), out = tvops::box_format_from_string(out_fmt);
    py::gil_scoped_release release;
    return tvops::box_convert(boxes, in, out, on_stream(stream));
  }, py::arg("boxes"), py::arg("in_fmt"), py::arg("out_fmt"), py::arg("stream") = 0);
  m.def("box_area", [on_stream](const tvops::Tensor& boxes, const std::string& fmt, uintptr_t stream) {
    const auto f = tvops::box_format_from_string(fmt);
    py::gil_scoped_release release;
    return tvops::box_area(boxes, f, on_stream(stream));
  }, py::arg("boxes"), py::arg("fmt"), py::arg("stream") = 0);
  m.def("clip_boxes_to_image", [on_stream](const tvops::Tensor& boxes, int64_t height, int64_t width, uintptr_t stream) {
    py::gil_scoped_release release;
    return tvops::clip_boxes_to_image(boxes, height, width, on_stream(stream));
  }, py::arg("boxes"), py::arg("height"), py::arg("width"), py::arg("stream") = 0);
  m.def("remove_small_boxes", [on_stream](const tvops::Tensor& boxes, double min_size, uintptr_t stream) {
    py::gil_scoped_release release;
    return tvops::remove_small_boxes(boxes, min_size, on_stream(stream));
  }, py::arg("boxes"), py::arg("min_size"), py::arg("stream") = 0);
  m.def("pairwise_box_iou", [on_stream](const tvops::Tensor& a, const tvops::Tensor& b, int kind, double eps,
                                        uintptr_t stream) {
    py::gil_scoped_release release;
    return tvops::pairwise_box_iou(a, b, static_cast<tvops::BoxIouKind>(kind), eps, on_stream(stream));
  }, py::arg("boxes1"), py::arg("boxes2"), py::arg("kind"), py::arg("eps"), py::arg("stream") = 0);

  // RoI ops: `stream` is the cudaStream_t (as an integer) CUDA tensors run on;
  // `deterministic` picks the CUDA backward without float atomics.
  auto context = [](uintptr_t stream) { return call_context(stream); };
  m.def("roi_align", [context](const tvops::Tensor& input, const tvops::Tensor& rois, double spatial_scale, int64_t ph,
                               int64_t pw, int64_t sampling_ratio, bool aligned, uintptr_t stream) {
        py::gil_scoped_release release;
        return tvops::roi_align(input, rois, spatial_scale, ph, pw, sampling_ratio, aligned, context(stream));
      },
      py::arg("input"), py::arg("rois"), py::arg("spatial_scale"), py::arg("pooled_height"), py::arg("pooled_width"),
      py::arg("sampling_ratio"), py::arg("aligned"), py::arg("stream") = 0);
  m.def("roi_align_backward", [context](const tvops::Tensor& grad, const tvops::Tensor& rois, double spatial_scale,
                                        int64_t ph, int64_t pw, int64_t batch, int64_t channels, int64_t height,
                                        int64_t width, int64_t sampling_ratio, bool aligned, uintptr_t stream,
                                        bool deterministic) {
        py::gil_scoped_release release;
        return tvops::roi_align_backward(grad, rois, spatial_scale, ph, pw, batch, channels, height, width,
                                         sampling_ratio, aligned, deterministic, context(stream));
      },
      py::arg("grad"), py::arg("rois"), py::arg("spatial_scale"), py::arg("pooled_height"), py::arg("pooled_width"),
      py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("sampling_ratio"),
      py::arg("aligned"), py::arg("stream") = 0, py::arg("deterministic") = false);

  m.def("roi_align_quint8", [](const tvops::Tensor& input, int64_t zero_point, const tvops::Tensor& rois,
                               double spatial_scale, int64_t ph, int64_t pw, int64_t sampling_ratio, bool aligned) {
    py::gil_scoped_release release;
    return tvops::roi_align_quint8(input, zero_point, rois, spatial_scale, ph, pw, sampling_ratio, aligned);
  });

  m.def("multi_scale_roi_align", [context](const std::vector<tvops::Tensor>& features,
                                           const std::vector<double>& scales, const tvops::Tensor& rois,
                                           const tvops::Tensor& levels, int64_t ph, int64_t pw, int64_t sampling_ratio,
                                           bool aligned, uintptr_t stream) {
        py::gil_scoped_release release;
        return tvops::multi_scale_roi_align(features, scales, rois, levels, ph, pw, sampling_ratio, aligned,
                                            context(stream));
      },
      py::arg("features"), py::arg("scales"), py::arg("rois"), py::arg("levels"), py::arg("pooled_height"),
      py::arg("pooled_width"), py::arg("sampling_ratio"), py::arg("aligned"), py::arg("stream") = 0);
  m.def("multi_scale_roi_align_backward", [context](const tvops::Tensor& grad, const tvops::Tensor& rois,
                                                    const tvops::Tensor& levels, const std::vector<double>& scales,
                                                    const std::vector<std::vector<int64_t>>& shapes,
                                                    int64_t sampling_ratio, bool aligned, uintptr_t stream,
                                                    bool deterministic) {
        py::gil_scoped_release release;
        return tvops::multi_scale_roi_align_backward(grad, rois, levels, scales, shapes, sampling_ratio, aligned,
                                                     deterministic, context(stream));
      },
      py::arg("grad"), py::arg("rois"), py::arg("levels"), py::arg("scales"), py::arg("shapes"),
      py::arg("sampling_ratio"), py::arg("aligned"), py::arg("stream") = 0, py::arg("deterministic") = false);
  // deform_conv2d: mask and bias may be None; torchvision's operator argument order.
  m.def("deform_conv2d", [context](const tvops::Tensor& input, const tvops::Tensor& weight, const tvops::Tensor& offset,
                                   const std::optional<tvops::Tensor>& mask, const std::optional<tvops::Tensor>& bias,
                                   int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h,
                                   int64_t dil_w, int64_t groups, int64_t offset_groups, bool allow_tf32,
                                   uintptr_t stream) {
        py::gil_scoped_release release;
        return tvops::deform_conv2d(input, weight, offset, mask.value_or(tvops::Tensor()),
                                    bias.value_or(tvops::Tensor()), stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
                                    groups, offset_groups, mask.has_value(), allow_tf32, context(stream));
      },
      py::arg("input"), py::arg("weight"), py::arg("offset"), py::arg("mask"), py::arg("bias"), py::arg("stride_h"),
      py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"), py::arg("dilation_h"), py::arg("dilation_w"),
      py::arg("groups"), py::arg("offset_groups"), py::arg("allow_tf32") = true, py::arg("stream") = 0);
  m.def("deform_conv2d_int8", [](const tvops::Tensor& input, const tvops::Tensor& weight, const tvops::Tensor& offset,
                                 const std::optional<tvops::Tensor>& mask, const std::optional<tvops::Tensor>& bias,
                                 int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h,
                                 int64_t dil_w, int64_t groups, int64_t offset_groups) {
        py::gil_scoped_release release;
        return tvops::deform_conv2d_int8(input, weight, offset, mask.value_or(tvops::Tensor()),
                                         bias.value_or(tvops::Tensor()), stride_h, stride_w, pad_h, pad_w, dil_h,
                                         dil_w, groups, offset_groups, mask.has_value());
      },
      py::arg("input"), py::arg("weight"), py::arg("offset"), py::arg("mask"), py::arg("bias"), py::arg("stride_h"),
      py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"), py::arg("dilation_h"), py::arg("dilation_w"),
      py::arg("groups"), py::arg("offset_groups"));
  m.def("deform_conv2d_backward", [context](const tvops::Tensor& grad, const tvops::Tensor& input,
                                            const tvops::Tensor& weight, const tvops::Tensor& offset,
                                            const std::optional<tvops::Tensor>& mask,
                                            const std::optional<tvops::Tensor>& bias, int64_t stride_h,
                                            int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h,
                                            int64_t dil_w, int64_t groups, int64_t offset_groups, bool allow_tf32,
                                            uintptr_t stream) {
        std::vector<tvops::Tensor> grads;
        {
          py::gil_scoped_release release;
          grads = tvops::deform_conv2d_backward(grad, input, weight, offset, mask.value_or(tvops::Tensor()),
                                                bias.value_or(tvops::Tensor()), stride_h, stride_w, pad_h, pad_w,
                                                dil_h, dil_w, groups, offset_groups, mask.has_value(), allow_tf32,
                                                context(stream));
        }
        std::vector<std::optional<tvops::Tensor>> out;  // no mask: None for its gradient
        for (auto& g : grads) out.push_back(g.defined() ? std::optional<tvops::Tensor>(g) : std::nullopt);
        return out;
      },
      py::arg("grad"), py::arg("input"), py::arg("weight"), py::arg("offset"), py::arg("mask"), py::arg("bias"),
      py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"), py::arg("dilation_h"),
      py::arg("dilation_w"), py::arg("groups"), py::arg("offset_groups"), py::arg("allow_tf32") = true,
      py::arg("stream") = 0);
  m.def("roi_pool", [context](const tvops::Tensor& input, const tvops::Tensor& rois, double scale, int64_t ph,
                              int64_t pw, uintptr_t stream) {
        py::gil_scoped_release release;
        return tvops::roi_pool(input, rois, scale, ph, pw, context(stream));
      },
      py::arg("input"), py::arg("rois"), py::arg("spatial_scale"), py::arg("pooled_height"), py::arg("pooled_width"),
      py::arg("stream") = 0);
  m.def("roi_pool_backward", [context](const tvops::Tensor& grad, const tvops::Tensor& rois,
                                       const tvops::Tensor& argmax, double scale, int64_t ph, int64_t pw, int64_t n,
                                       int64_t c, int64_t h, int64_t w, uintptr_t stream, bool deterministic) {
        py::gil_scoped_release release;
        return tvops::roi_pool_backward(grad, rois, argmax, scale, ph, pw, n, c, h, w, deterministic, context(stream));
      },
      py::arg("grad"), py::arg("rois"), py::arg("argmax"), py::arg("spatial_scale"), py::arg("pooled_height"),
      py::arg("pooled_width"), py::arg("batch"), py::arg("channels"), py::arg("height"), py::arg("width"),
      py::arg("stream") = 0, py::arg("deterministic") = false);
  m.def("ps_roi_align", [context](const tvops::Tensor& input, const tvops::Tensor& rois, double scale, int64_t ph,
                                  int64_t pw, int64_t sampling_ratio, uintptr_t stream) {
        py::gil_scoped_release release;
        return tvops::ps_roi_align(input, rois, scale, ph, pw, sampling_ratio, context(stream));
      },
      py::arg("input"), py::arg("rois"), py::arg("spatial_scale"), py::arg("pooled_height"), py::arg("pooled_width"),
      py::arg("sampling_ratio"), py::arg("stream") = 0);
  m.def("ps_roi_align_backward", [context](const tvops::Tensor& grad, const tvops::Tensor& rois,
                                           const tvops::Tensor& mapping, double scale, int64_t ph, int64_t pw,
                                           int64_t sampling_ratio, int64_t n, int64_t c, int64_t h, int64_t w,
                                           uintptr_t stream, bool deterministic) {
        py::gil_scoped_release release;
        return tvops::ps_roi_align_backward(grad, rois, mapping, scale, ph, pw, sampling_ratio, n, c, h, w,
                                            deterministic, context(stream));
      },
      py::arg("grad"), py::arg("rois"), py::arg("channel_mapping"), py::arg("spatial_scale"),
      py::arg("pooled_height"), py::arg("pooled_width"), py::arg("sampling_ratio"), py::arg("batch"),
      py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("stream") = 0,
      py::arg("deterministic") = false);
  m.def("ps_roi_pool", [context](const tvops::Tensor& input, const tvops::Tensor& rois, double scale, int64_t ph,
                                 int64_t pw, uintptr_t stream) {
        py::gil_scoped_release release;
        return tvops::ps_roi_pool(input, rois, scale, ph, pw, context(stream));
      },
      py::arg("input"), py::arg("rois"), py::arg("spatial_scale"), py::arg("pooled_height"), py::arg("pooled_width"),
      py::arg("stream") = 0);
  m.def("ps_roi_pool_backward", [context](const tvops::Tensor& grad, const tvops::Tensor& rois,
                                          const tvops::Tensor& mapping, double scale, int64_t ph, int64_t pw,
                                          int64_t n, int64_t c, int64_t h, int64_t w, uintptr_t stream,
                                          bool deterministic) {
        py::gil_scoped_release release;
        return tvops::ps_roi_pool_backward(grad, rois, mapping, scale, ph, pw, n, c, h, w, deterministic,
                                           context(stream));
      },
      py::arg("grad"), py::arg("rois"), py::arg("channel_mapping"), py::arg("spatial_scale"),
      py::arg("pooled_height"), py::arg("pooled_width"), py::arg("batch"), py::arg("channels"), py::arg("height"),
      py::arg("width"), py::arg("stream") = 0, py::arg("deterministic") = false);

  m.def("build_info", &build_info_dict);
  m.def("cpu_features", &cpu_features_dict);
  m.def("check_cpu_compatibility", &tvops::check_cpu_compatibility);
  m.def("check_cuda_device", &tvops::check_cuda_device, py::arg("device"));
  m.def("recommended_variant", [] {
    std::string reason;
    std::string v = tvops::recommended_variant(&reason);
    return py::make_tuple(v, reason);
  });
  m.def("active_cpu_isa", &tvops::active_cpu_isa);
  m.def("available_cpu_isas", &tvops::available_cpu_isas);
  m.def("set_cpu_isa", &tvops::set_cpu_isa, py::arg("isa"));
  m.def("num_threads", &tvops::num_threads);
  m.def("set_num_threads", &tvops::set_num_threads, py::arg("n"));

  bind_io(m);
  bind_allocator(m);
}
