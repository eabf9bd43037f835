// GPU JPEG decode with nvJPEG, loaded at run time (dlopen), so a CUDA variant needs no
// nvJPEG to load and a machine without it gets a clear error. torchvision's recipe, for
// the same pixels: baseline JPEGs in one batched call on the hardware decoder (A100,
// H100 and later have one), the others one by one through the GPU-hybrid decoupled API.
// Outputs are planar, so nvJPEG writes CHW directly. The decode runs on the caller's
// stream; the host waits for the software path only (its Huffman stage runs there).
#include <dlfcn.h>
#include <nvjpeg.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/cuda_backend.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"
#include "tvops/io.h"

namespace tvops::cuda {

namespace {

constexpr const char* kOp = "decode_jpegs_cuda";

// The nvJPEG entry points used here, resolved from the shared library.
struct NvJpegApi {
#define TVOPS_NVJPEG_FUNCTIONS(X)                                                                           \
  X(nvjpegCreateEx) X(nvjpegJpegStateCreate) X(nvjpegGetImageInfo) X(nvjpegDecodeBatchedInitialize)        \
  X(nvjpegDecodeBatched) X(nvjpegJpegStreamCreate) X(nvjpegJpegStreamParseHeader)                          \
  X(nvjpegDecodeBatchedSupported) X(nvjpegDecoderCreate) X(nvjpegDecoderStateCreate)                       \
  X(nvjpegBufferPinnedCreate) X(nvjpegBufferDeviceCreate) X(nvjpegDecodeParamsCreate)                      \
  X(nvjpegDecodeParamsSetOutputFormat) X(nvjpegJpegStreamParse) X(nvjpegStateAttachPinnedBuffer)           \
  X(nvjpegStateAttachDeviceBuffer) X(nvjpegDecodeJpegHost) X(nvjpegDecodeJpegTransferToDevice)             \
  X(nvjpegDecodeJpegDevice)
#define TVOPS_DECLARE(name) decltype(&::name) name = nullptr;
  TVOPS_NVJPEG_FUNCTIONS(TVOPS_DECLARE)
#undef TVOPS_DECLARE
  std::string error;  // why it could not load, if it could not

  static const NvJpegApi& get() {
    static const NvJpegApi api = load();
    return api;
  }

 private:
  static NvJpegApi load() {
    NvJpegApi api;
    void* lib = nullptr;
    const char* env = std::getenv("TVOPS_NVJPEG_LIBRARY");
    for (const char* name : {env, "libnvjpeg.so.13", "libnvjpeg.so.12", "libnvjpeg.so"})
      if (name && *name && (lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) {
      api.error = "the nvJPEG library (libnvjpeg.so.13 or .12) was not found; install it (e.g. pip install "
                  "nvidia-nvjpeg, or CUDA's libnvjpeg) or point TVOPS_NVJPEG_LIBRARY at it";
      return api;
    }
#define TVOPS_RESOLVE(name)                                                            \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(lib, #name));                \
  if (!api.name && api.error.empty()) api.error = "the nvJPEG library lacks " #name;
    TVOPS_NVJPEG_FUNCTIONS(TVOPS_RESOLVE)
#undef TVOPS_RESOLVE
    return api;
  }
};

void check_nv(nvjpegStatus_t status, const char* what) {
  if (status != NVJPEG_STATUS_SUCCESS)
    detail::fail(ErrorKind::Runtime, kOp, ": ", what, " failed (nvjpegStatus ", int(status), ")");
}

// One decoder per device, as nvJPEG's handles and states are not cheap to make.
struct Decoder {
  nvjpegHandle_t handle = nullptr;
  nvjpegJpegState_t batched_state = nullptr, decoupled_state = nullptr;
  nvjpegJpegDecoder_t decoder = nullptr;
  nvjpegBufferPinned_t pinned[2] = {nullptr, nullptr};
  nvjpegBufferDevice_t device_buffer = nullptr;
  nvjpegJpegStream_t streams[2] = {nullptr, nullptr};
  nvjpegDecodeParams_t params = nullptr;
  bool hardware = true;
  std::mutex mutex;  // one decode at a time per device (the states are shared)

  explicit Decoder(const NvJpegApi& nv) {
    nvjpegStatus_t s = nv.nvjpegCreateEx(NVJPEG_BACKEND_HARDWARE, nullptr, nullptr, NVJPEG_FLAGS_DEFAULT, &handle);
    if (s == NVJPEG_STATUS_ARCH_MISMATCH || s == NVJPEG_STATUS_IMPLEMENTATION_NOT_SUPPORTED) {  // no hardware decoder
      hardware = false;
      s = nv.nvjpegCreateEx(NVJPEG_BACKEND_DEFAULT, nullptr, nullptr, NVJPEG_FLAGS_DEFAULT, &handle);
    }
    check_nv(s, "nvjpegCreateEx");
    check_nv(nv.nvjpegJpegStateCreate(handle, &batched_state), "nvjpegJpegStateCreate");
    check_nv(nv.nvjpegDecoderCreate(handle, NVJPEG_BACKEND_DEFAULT, &decoder), "nvjpegDecoderCreate");
    check_nv(nv.nvjpegDecoderStateCreate(handle, decoder, &decoupled_state), "nvjpegDecoderStateCreate");
    for (int i = 0; i < 2; ++i) {
      check_nv(nv.nvjpegBufferPinnedCreate(handle, nullptr, &pinned[i]), "nvjpegBufferPinnedCreate");
      check_nv(nv.nvjpegJpegStreamCreate(handle, &streams[i]), "nvjpegJpegStreamCreate");
    }
    check_nv(nv.nvjpegBufferDeviceCreate(handle, nullptr, &device_buffer), "nvjpegBufferDeviceCreate");
    check_nv(nv.nvjpegDecodeParamsCreate(handle, &params), "nvjpegDecodeParamsCreate");
  }
  // Kept for the process: destroying nvJPEG state at exit can run after CUDA shut down.
};

Decoder& decoder_for(int device) {
  static std::mutex mutex;
  static auto* decoders = new std::map<int, std::unique_ptr<Decoder>>;
  std::lock_guard<std::mutex> lock(mutex);
  auto& d = (*decoders)[device];
  if (!d) d = std::make_unique<Decoder>(NvJpegApi::get());
  return *d;
}

}  // namespace

bool nvjpeg_available() { return NvJpegApi::get().error.empty(); }

std::vector<Tensor> decode_jpegs(const std::vector<Tensor>& data, int mode, int device, const Context& ctx) {
  const NvJpegApi& nv = NvJpegApi::get();
  TVOPS_CHECK(nv.error.empty(), Unsupported, kOp, ": device: no GPU JPEG decoder: ", nv.error);
  DeviceGuard guard(device);
  Decoder& dec = decoder_for(device);
  std::lock_guard<std::mutex> lock(dec.mutex);
  auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  // UNCHANGED decodes as RGB and keeps one plane of single-channel images (as torchvision).
  const nvjpegOutputFormat_t format = mode == 1 ? NVJPEG_OUTPUT_Y : NVJPEG_OUTPUT_RGB;
  const int planes = mode == 1 ? 1 : 3;

  std::vector<Tensor> out(data.size());
  std::vector<nvjpegImage_t> images(data.size());
  std::vector<int> channels(data.size());
  std::vector<const unsigned char*> hw_data, sw_data;
  std::vector<std::size_t> hw_size, sw_size;
  std::vector<nvjpegImage_t> hw_images, sw_images;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto* bytes = static_cast<const unsigned char*>(data[i].data_ptr());
    const std::size_t size = static_cast<std::size_t>(data[i].numel());
    int widths[NVJPEG_MAX_COMPONENT], heights[NVJPEG_MAX_COMPONENT];
    nvjpegChromaSubsampling_t subsampling;
    const nvjpegStatus_t s = nv.nvjpegGetImageInfo(dec.handle, bytes, size, &channels[i], &subsampling, widths, heights);
    TVOPS_CHECK(s == NVJPEG_STATUS_SUCCESS && subsampling != NVJPEG_CSS_UNKNOWN, Value, kOp, ": data[", i,
                "]: not a JPEG nvJPEG can decode (nvjpegStatus ", int(s), ")");
    const int64_t pixels = int64_t(widths[0]) * heights[0];
    TVOPS_CHECK(pixels > 0, Value, kOp, ": data[", i, "]: zero-sized image");
    const int64_t limit = max_image_pixels();
    TVOPS_CHECK(limit == 0 || pixels <= limit, Value, kOp, ": data[", i, "]: ", widths[0], "x", heights[0],
                " pixels exceed the limit of ", limit, " (set_max_image_pixels)");
    out[i] = Tensor::empty({planes, heights[0], widths[0]}, DType::UInt8, Device{DeviceType::CUDA, device}, ctx);
    nvjpegImage_t& img = images[i];
    for (int c = 0; c < NVJPEG_MAX_COMPONENT; ++c) {
      img.channel[c] = c < planes ? out[i].data<uint8_t>() + int64_t(c) * pixels : nullptr;
      img.pitch[c] = c < planes ? static_cast<unsigned>(widths[0]) : 0;
    }
    int batched = -1;
    if (dec.hardware && nv.nvjpegJpegStreamParseHeader(dec.handle, bytes, size, dec.streams[0]) == NVJPEG_STATUS_SUCCESS)
      nv.nvjpegDecodeBatchedSupported(dec.handle, dec.streams[0], &batched);
    auto& d = batched == 0 ? hw_data : sw_data;
    auto& z = batched == 0 ? hw_size : sw_size;
    auto& m = batched == 0 ? hw_images : sw_images;
    d.push_back(bytes), z.push_back(size), m.push_back(img);
  }
  if (!hw_data.empty()) {
    check_nv(nv.nvjpegDecodeBatchedInitialize(dec.handle, dec.batched_state, int(hw_data.size()), 1, format),
             "nvjpegDecodeBatchedInitialize");
    check_nv(nv.nvjpegDecodeBatched(dec.handle, dec.batched_state, hw_data.data(), hw_size.data(), hw_images.data(),
                                    stream),
             "nvjpegDecodeBatched");
  }
  if (!sw_data.empty()) {
    check_nv(nv.nvjpegStateAttachDeviceBuffer(dec.decoupled_state, dec.device_buffer), "nvjpegStateAttachDeviceBuffer");
    check_nv(nv.nvjpegDecodeParamsSetOutputFormat(dec.params, format), "nvjpegDecodeParamsSetOutputFormat");
    int buf = 0;  // two pinned buffers: the host stage of image i+1 overlaps the device stage of image i
    for (std::size_t i = 0; i < sw_data.size(); ++i) {
      check_nv(nv.nvjpegJpegStreamParse(dec.handle, sw_data[i], sw_size[i], 0, 0, dec.streams[buf]),
               "nvjpegJpegStreamParse");
      check_nv(nv.nvjpegStateAttachPinnedBuffer(dec.decoupled_state, dec.pinned[buf]), "nvjpegStateAttachPinnedBuffer");
      check_nv(nv.nvjpegDecodeJpegHost(dec.handle, dec.decoder, dec.decoupled_state, dec.params, dec.streams[buf]),
               "nvjpegDecodeJpegHost");
      TVOPS_CUDA_CHECK(cudaStreamSynchronize(stream));
      check_nv(nv.nvjpegDecodeJpegTransferToDevice(dec.handle, dec.decoder, dec.decoupled_state, dec.streams[buf],
                                                   stream),
               "nvjpegDecodeJpegTransferToDevice");
      check_nv(nv.nvjpegDecodeJpegDevice(dec.handle, dec.decoder, dec.decoupled_state, &sw_images[i], stream),
               "nvjpegDecodeJpegDevice");
      buf = 1 - buf;
    }
  }
  TVOPS_CUDA_CHECK(cudaGetLastError());
  if (mode == 0)  // UNCHANGED: single-channel sources keep their one plane
    for (std::size_t i = 0; i < out.size(); ++i)
      if (channels[i] == 1) {
        Tensor gray = Tensor::empty({1, out[i].size(1), out[i].size(2)}, DType::UInt8, out[i].device(), ctx);
        TVOPS_CUDA_CHECK(cudaMemcpyAsync(gray.data_ptr(), out[i].data_ptr(), gray.numel(), cudaMemcpyDeviceToDevice,
                                         stream));
        out[i] = gray;
      }
  return out;
}

}  // namespace tvops::cuda
