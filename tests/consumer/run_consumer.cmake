# Installs the tvops build into a scratch prefix, then configures, builds and runs
# tests/consumer against it with find_package(tvops).
set(prefix "${TVOPS_BUILD_DIR}/consumer-test/prefix")
set(build "${TVOPS_BUILD_DIR}/consumer-test/build")
file(REMOVE_RECURSE "${prefix}" "${build}")
foreach(step
    "${CMAKE_COMMAND};--install;${TVOPS_BUILD_DIR};--prefix;${prefix}"
    "${CMAKE_COMMAND};-S;${TVOPS_SOURCE_DIR}/tests/consumer;-B;${build};-G;${CMAKE_GENERATOR};-DCMAKE_PREFIX_PATH=${prefix}"
    "${CMAKE_COMMAND};--build;${build}"
    "${build}/consumer")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test failed at: ${step}")
  endif()
endforeach()
