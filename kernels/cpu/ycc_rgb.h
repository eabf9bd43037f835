// The last stage of a YCbCr JPEG decode, done by tvops instead of libjpeg (tier
// namespace): libjpeg's "fancy" (triangle-filter) chroma upsampling and its
// YCbCr -> RGB conversion, with the same integer arithmetic as libjpeg-turbo (its C
// tables and its SIMD code agree bit for bit), writing R, G and B planes directly.
// The decoder reads the components raw (jpeg_read_raw_data), so the RGB rows are never
// interleaved only to be split into CHW planes again.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/tier.h"

namespace tvops::cpu::TVOPS_CPU_TIER {

// (YccRow, ChromaSampling, ycc_scratch_size: kernel_table.h.)
// planes[0..2][0, width) = R, G, B: libjpeg's h2v1 / h2v2 fancy upsampling of the chroma
// and its ycc_rgb_convert. stream: non-temporal stores where the planes are aligned
// (outputs larger than the caches; the caller fences).
void ycc_to_rgb_row(const YccRow& row, uint8_t* const* planes, bool stream, uint16_t* scratch);

}  // namespace tvops::cpu::TVOPS_CPU_TIER
