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

set(CPACK_PACKAGE_NAME "tvops-${TVOPS_VARIANT_NAME}")
set(CPACK_PACKAGE_VENDOR "tvops")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "tvops ${TVOPS_VARIANT_NAME}: native computer-vision operators")
set(CPACK_PACKAGE_FILE_NAME "tvops-${TVOPS_VARIANT_NAME}-${PROJECT_VERSION}-${TVOPS_HOST_ARCH}")
set(CPACK_GENERATOR TGZ)
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
include(CPack)
