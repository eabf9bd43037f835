// Bindings of tvops' image codecs (tvops/io.h); torchvision_native.io wraps them
// with torchvision's names and arguments.
#include <array>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "call_context.h"
#include "tvops/io.h"

namespace py = pybind11;

namespace {

// (min_height, min_width, crop_top, crop_left, crop_height, crop_width)
tvops::DecodeSize decode_size(const std::array<int64_t, 6>& s) {
  tvops::DecodeSize d;
  d.min_height = s[0], d.min_width = s[1];
  d.crop_top = s[2], d.crop_left = s[3], d.crop_height = s[4], d.crop_width = s[5];
  return d;
}

tvops::ImageReadMode read_mode(int mode) { return static_cast<tvops::ImageReadMode>(mode); }

}  // namespace

void bind_io(py::module_& m) {
  using Size = std::array<int64_t, 6>;
  const Size full{0, 0, 0, 0, 0, 0};
  m.def("decode_jpeg", [](const tvops::Tensor& data, int mode, bool exif, const Size& size) {
        py::gil_scoped_release release;
        return tvops::decode_jpeg(data, read_mode(mode), exif, decode_size(size));
      },
      py::arg("data"), py::arg("mode") = 0, py::arg("apply_exif_orientation") = false, py::arg("size") = full);
  m.def("decode_png", [](const tvops::Tensor& data, int mode, bool exif, const Size& size) {
        py::gil_scoped_release release;
        return tvops::decode_png(data, read_mode(mode), exif, decode_size(size));
      },
      py::arg("data"), py::arg("mode") = 0, py::arg("apply_exif_orientation") = false, py::arg("size") = full);
  m.def("decode_image", [](const tvops::Tensor& data, int mode, bool exif, const Size& size) {
        py::gil_scoped_release release;
        return tvops::decode_image(data, read_mode(mode), exif, decode_size(size));
      },
      py::arg("data"), py::arg("mode") = 0, py::arg("apply_exif_orientation") = false, py::arg("size") = full);
  m.def("decode_images", [](const std::vector<tvops::Tensor>& data, int mode, bool exif, const Size& size) {
        py::gil_scoped_release release;
        return tvops::decode_images(data, read_mode(mode), exif, decode_size(size));
      },
      py::arg("data"), py::arg("mode") = 0, py::arg("apply_exif_orientation") = false, py::arg("size") = full);
  m.def("decode_jpegs", [](const std::vector<tvops::Tensor>& data, int mode, bool exif, const Size& size) {
        py::gil_scoped_release release;
        return tvops::decode_jpegs(data, read_mode(mode), exif, decode_size(size));
      },
      py::arg("data"), py::arg("mode") = 0, py::arg("apply_exif_orientation") = false, py::arg("size") = full);
  m.def("decode_jpegs_cuda", [](const std::vector<tvops::Tensor>& data, int mode, int device, uintptr_t stream) {
        const tvops::Context ctx = call_context(stream);
        py::gil_scoped_release release;
        return tvops::decode_jpegs_cuda(data, read_mode(mode), tvops::Device{tvops::DeviceType::CUDA, device}, ctx);
      },
      py::arg("data"), py::arg("mode"), py::arg("device"), py::arg("stream") = 0);
  m.def("has_nvjpeg", &tvops::has_nvjpeg);
  m.def("encode_jpeg", [](const tvops::Tensor& image, int64_t quality) {
        py::gil_scoped_release release;
        return tvops::encode_jpeg(image, quality);
      },
      py::arg("image"), py::arg("quality") = 75);
  m.def("encode_png", [](const tvops::Tensor& image, int64_t level) {
        py::gil_scoped_release release;
        return tvops::encode_png(image, level);
      },
      py::arg("image"), py::arg("compression_level") = 6);
  m.def("read_file", [](const std::string& path) {
        py::gil_scoped_release release;
        return tvops::read_file(path);
      },
      py::arg("path"));
  m.def("write_file", [](const std::string& path, const tvops::Tensor& data) {
        py::gil_scoped_release release;
        tvops::write_file(path, data);
      },
      py::arg("path"), py::arg("data"));
  m.def("set_max_image_pixels", &tvops::set_max_image_pixels, py::arg("pixels"));
  m.def("max_image_pixels", &tvops::max_image_pixels);
  m.def("jpeg_library_version", &tvops::jpeg_library_version);
  m.def("png_library_version", &tvops::png_library_version);
}
