# libtvops.so: baseline-compiled core and dispatch, one OBJECT library of CPU
# kernels per ISA tier, and the CUDA kernels when the build has SM targets.

set(TVOPS_GENERATED_DIR "${PROJECT_BINARY_DIR}/generated")
configure_file(csrc/include/tvops/version.h.in "${TVOPS_GENERATED_DIR}/tvops/version.h" @ONLY)

# C initialiser lists for csrc/dispatch/matrix.h.
function(tvops_c_string_list out)
  set(_items "")
  foreach(_v IN LISTS ARGN)
    list(APPEND _items "\"${_v}\"")
  endforeach()
  list(JOIN _items ", " _joined)
  set(${out} "${_joined}" PARENT_SCOPE)
endfunction()
tvops_c_string_list(TVOPS_ISA_PREFERENCE_C ${TVOPS_ISA_PREFERENCE})
tvops_c_string_list(TVOPS_CPU_ISAS_C ${TVOPS_CPU_ISA_LIST})
list(JOIN TVOPS_MATRIX_CUDA_ARCHS ", " TVOPS_MATRIX_CUDA_ARCHS_C)
if(TVOPS_CUDA_ARCH_LIST)
  list(JOIN TVOPS_CUDA_ARCH_LIST ", " TVOPS_CUDA_ARCHS_C)
else()
  set(TVOPS_CUDA_ARCHS_C "0")
endif()
set(TVOPS_CPU_TIER_XMACRO "")
foreach(_isa IN LISTS TVOPS_CPU_ISA_LIST)
  string(MAKE_C_IDENTIFIER "${_isa}" _ns)
  set(_parent "${TVOPS_ISA_PARENT_${_isa}}")
  if(NOT _parent IN_LIST TVOPS_CPU_ISA_LIST)
    set(_parent "")  # the parent tier is not compiled in: this one is a root here
  endif()
  string(APPEND TVOPS_CPU_TIER_XMACRO " X(${_ns}, \"${_isa}\", \"${_parent}\")")
endforeach()
# X-macro over the matrix's ISAs and the CpuFeatures members each needs (cpu_features).
set(TVOPS_MATRIX_ISA_XMACRO "")
foreach(_isa IN LISTS TVOPS_MATRIX_ISAS)
  list(TRANSFORM TVOPS_ISA_FEATURES_${_isa} PREPEND "&CpuFeatures::" OUTPUT_VARIABLE _members)
  list(JOIN _members ", " _members)
  string(APPEND TVOPS_MATRIX_ISA_XMACRO " X(\"${_isa}\", ${_members})")
endforeach()
configure_file(csrc/dispatch/matrix.h.in "${TVOPS_GENERATED_DIR}/dispatch/matrix.h" @ONLY)

set(TVOPS_PRIVATE_INCLUDES "${PROJECT_SOURCE_DIR}/csrc" "${PROJECT_SOURCE_DIR}" "${TVOPS_GENERATED_DIR}"
    "${PROJECT_BINARY_DIR}/deps")

# Kernels must give torchvision's exact rounding: no FMA contraction.
set(TVOPS_KERNEL_FLAGS -ffp-contract=off)

# ---- CPU kernels, one OBJECT library per ISA tier ----
set(TVOPS_CPU_KERNEL_SOURCES
  kernels/cpu/box_iou.cpp
  kernels/cpu/deform_conv.cpp
  kernels/cpu/nms.cpp
  kernels/cpu/roi_align.cpp
  kernels/cpu/roi_pool.cpp
  kernels/cpu/transpose.cpp
  kernels/cpu/interleave.cpp
  kernels/cpu/ycc_rgb.cpp
  kernels/cpu/register.cpp
)
set(TVOPS_CPU_TIER_OBJECTS "")
foreach(_isa IN LISTS TVOPS_CPU_ISA_LIST)
  string(MAKE_C_IDENTIFIER "${_isa}" _ns)
  set(_target tvops_cpu_${_ns})
  add_library(${_target} OBJECT ${TVOPS_CPU_KERNEL_SOURCES})
  target_include_directories(${_target} PRIVATE ${TVOPS_PRIVATE_INCLUDES} "${PROJECT_SOURCE_DIR}/csrc/include")
  target_compile_definitions(${_target} PRIVATE TVOPS_BUILDING_LIBRARY TVOPS_CPU_TIER=${_ns}
                             TVOPS_CPU_TIER_NAME="${_isa}")
  target_compile_options(${_target} PRIVATE ${TVOPS_ISA_FLAGS_${_isa}} ${TVOPS_KERNEL_FLAGS} -fno-lto)
  list(APPEND TVOPS_CPU_TIER_OBJECTS $<TARGET_OBJECTS:${_target}>)
endforeach()

# ---- CPU feature probe: baseline flags, never LTO (ggml learned this the hard way) ----
add_library(tvops_probe OBJECT csrc/dispatch/cpu_features.cpp csrc/dispatch/cpu_isa.cpp csrc/dispatch/variant.cpp)
target_include_directories(tvops_probe PRIVATE ${TVOPS_PRIVATE_INCLUDES} "${PROJECT_SOURCE_DIR}/csrc/include")
target_compile_definitions(tvops_probe PRIVATE TVOPS_BUILDING_LIBRARY)
target_compile_options(tvops_probe PRIVATE -fno-lto)

# ---- The library ----
set(TVOPS_CORE_SOURCES
  csrc/core/errors.cpp
  csrc/core/tensor.cpp
  csrc/core/host_allocator.cpp
  csrc/core/dlpack.cpp
  csrc/core/thread_pool.cpp
  csrc/core/build_info.cpp
  csrc/ops/score_order.cpp
  csrc/ops/nms.cpp
  csrc/ops/boxes.cpp
  csrc/ops/roi_align.cpp
  csrc/ops/roi_pool.cpp
  csrc/ops/deform_conv2d.cpp
  csrc/io/image_common.cpp
  csrc/io/image.cpp
  csrc/io/jpeg_decode.cpp
  csrc/io/jpeg_encode.cpp
  csrc/io/png_decode.cpp
  csrc/io/png_encode.cpp
)
if(TVOPS_CUDA_ARCH_LIST)
  list(APPEND TVOPS_CORE_SOURCES kernels/cuda/runtime.cu kernels/cuda/boxes.cu kernels/cuda/nms.cu kernels/cuda/roi_align.cu
       kernels/cuda/roi_pool.cu kernels/cuda/deform_conv2d.cu)
else()
  list(APPEND TVOPS_CORE_SOURCES csrc/core/cuda_backend_none.cpp)
endif()

add_library(tvops SHARED ${TVOPS_CORE_SOURCES} $<TARGET_OBJECTS:tvops_probe> ${TVOPS_CPU_TIER_OBJECTS})
add_library(tvops::tvops ALIAS tvops)
target_include_directories(tvops
  PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/csrc/include> $<BUILD_INTERFACE:${TVOPS_GENERATED_DIR}>
         $<INSTALL_INTERFACE:include>
  PRIVATE ${TVOPS_PRIVATE_INCLUDES})
target_compile_definitions(tvops PRIVATE TVOPS_BUILDING_LIBRARY $<$<BOOL:${TVOPS_CUDA_ARCH_LIST}>:TVOPS_WITH_CUDA>
                           $<$<BOOL:${TVOPS_CUDA_ARCH_LIST}>:TVOPS_CUDA_DEFORM_CONV>)
target_compile_options(tvops PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra> ${TVOPS_KERNEL_FLAGS})
target_link_libraries(tvops PRIVATE Threads::Threads)

# Image codecs (csrc/io), linked privately: nothing of libjpeg or libpng shows in
# tvops' headers, so consumers of the installed package need neither.
# TVOPS_CODECS=AUTO uses what is found (a cross build without the target's libjpeg
# and libpng builds without codecs; their functions then raise), ON requires both.
if(NOT TVOPS_CODECS STREQUAL "OFF")
  find_package(JPEG QUIET)
  find_package(PNG QUIET)
  if(TVOPS_CODECS STREQUAL "ON" AND NOT (JPEG_FOUND AND PNG_FOUND))
    message(FATAL_ERROR "TVOPS_CODECS=ON needs libjpeg-turbo and libpng (libjpeg62-turbo-dev, libpng-dev)")
  endif()
  if(JPEG_FOUND)
    target_sources(tvops PRIVATE csrc/io/jpeg_common.cpp)
    target_compile_definitions(tvops PRIVATE TVOPS_WITH_JPEG)
    target_link_libraries(tvops PRIVATE JPEG::JPEG)
  endif()
  if(PNG_FOUND)
    target_sources(tvops PRIVATE csrc/io/png_common.cpp csrc/io/png_pipeline.cpp)
    target_compile_definitions(tvops PRIVATE TVOPS_WITH_PNG)
    target_link_libraries(tvops PRIVATE PNG::PNG)
  endif()
  if(JPEG_FOUND AND PNG_FOUND)
    set(TVOPS_HAVE_CODECS ON)
  endif()
  message(STATUS "tvops image codecs: JPEG ${JPEG_FOUND}, PNG ${PNG_FOUND}")
endif()
# GPU JPEG decode (kernels/cuda/jpeg_decode.cu): needs nvjpeg.h at build time (CUDA's
# libnvjpeg-dev, or PyPI's nvidia-nvjpeg in the project venv); the library itself is
# loaded at run time, so nothing of nvJPEG is linked.
if(TVOPS_CUDA_ARCH_LIST)
  file(GLOB _nvjpeg_hints "${PROJECT_SOURCE_DIR}/.venv/lib/python3*/site-packages/nvidia/cu*/include")
  find_path(TVOPS_NVJPEG_INCLUDE_DIR nvjpeg.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${_nvjpeg_hints})
  if(TVOPS_NVJPEG_INCLUDE_DIR)
    # The header alone: the venv's folder also holds CUDA headers of another version.
    configure_file("${TVOPS_NVJPEG_INCLUDE_DIR}/nvjpeg.h" "${PROJECT_BINARY_DIR}/deps/nvjpeg/nvjpeg.h" COPYONLY)
    target_sources(tvops PRIVATE kernels/cuda/jpeg_decode.cu)
    target_include_directories(tvops PRIVATE "${PROJECT_BINARY_DIR}/deps/nvjpeg")
    target_compile_definitions(tvops PRIVATE TVOPS_WITH_NVJPEG)
    target_link_libraries(tvops PRIVATE ${CMAKE_DL_LIBS})
  endif()
  message(STATUS "tvops GPU JPEG decode (nvJPEG header): ${TVOPS_NVJPEG_INCLUDE_DIR}")
endif()
if(TVOPS_CUDA_ARCH_LIST)
  # Static CUDA runtime: a CPU-only machine loads the library without CUDA installed.
  set_target_properties(tvops PROPERTIES CUDA_RUNTIME_LIBRARY Static)
  target_compile_options(tvops PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
  # The SM target whose row of kernels/cuda/arch_tuning.cuh the kernels use (a variant
  # has one; a development build with several takes the lowest).
  list(GET TVOPS_CUDA_ARCH_LIST 0 _tune_arch)
  foreach(_a IN LISTS TVOPS_CUDA_ARCH_LIST)
    if(_a LESS _tune_arch)
      set(_tune_arch ${_a})
    endif()
  endforeach()
  target_compile_definitions(tvops PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:TVOPS_CUDA_ARCH=${_tune_arch}>)
endif()
set_target_properties(tvops PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                      EXPORT_NAME tvops)
# Only TVOPS_API symbols leave the library.
target_link_options(tvops PRIVATE -Wl,--exclude-libs,ALL)
