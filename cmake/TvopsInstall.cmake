# `cmake --install` gives headers, libtvops.so and a CMake package:
# find_package(tvops) then target_link_libraries(app tvops::tvops). CPack packs the
# same files per variant (the package presets).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS tvops EXPORT tvopsTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY csrc/include/tvops DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES "${TVOPS_GENERATED_DIR}/tvops/version.h" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tvops)

set(TVOPS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tvops)
install(EXPORT tvopsTargets NAMESPACE tvops:: DESTINATION ${TVOPS_CMAKE_DIR})
configure_package_config_file(cmake/tvopsConfig.cmake.in "${PROJECT_BINARY_DIR}/tvopsConfig.cmake"
                              INSTALL_DESTINATION ${TVOPS_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/tvopsConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/tvopsConfig.cmake" "${PROJECT_BINARY_DIR}/tvopsConfigVersion.cmake"
        DESTINATION ${TVOPS_CMAKE_DIR})

# One package per variant, named from the matrix's packages.cpack ("tvops-{variant}"):
# a tar.gz (unpack anywhere, point CMAKE_PREFIX_PATH at it) and a .deb (/usr). Every
# variant installs the same files, so the .debs provide, conflict with and replace
# the virtual package "tvops": one variant per machine.
string(JSON _cpack_name GET "${_matrix}" packages cpack)
string(REPLACE "{variant}" "${TVOPS_VARIANT_NAME}" _cpack_name "${_cpack_name}")
set(CPACK_PACKAGE_NAME "${_cpack_name}")
set(CPACK_PACKAGE_VENDOR "tvops")
set(CPACK_PACKAGE_CONTACT "tvops maintainers <tvops@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "tvops ${TVOPS_VARIANT_NAME}: native computer-vision operators")
set(CPACK_PACKAGE_FILE_NAME "${_cpack_name}-${PROJECT_VERSION}-${TVOPS_HOST_ARCH}")
set(CPACK_GENERATOR TGZ DEB)
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "tvops ${TVOPS_VARIANT_NAME}: torchvision's operators as a C++ library
 libtvops.so with headers and the CMake package (find_package(tvops)), built for
 CPU ISA tiers ${TVOPS_CPU_ISA_LIST} and CUDA targets ${TVOPS_CUDA_ARCH_LIST}.")
set(CPACK_DEBIAN_PACKAGE_PROVIDES tvops)
set(CPACK_DEBIAN_PACKAGE_CONFLICTS tvops)
set(CPACK_DEBIAN_PACKAGE_REPLACES tvops)
if(TVOPS_HOST_ARCH STREQUAL "aarch64")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
else()
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
endif()
if(CMAKE_CROSSCOMPILING)  # dpkg-shlibdeps can't read the target's libraries here
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libgcc-s1, libstdc++6")
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
include(CPack)
