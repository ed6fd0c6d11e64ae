# What the vcpkg port does, with plain CMake, where vcpkg is not installed:
# configure tr0n with the options portfile.cmake passes (default features:
# no tools), install it into a scratch prefix, check the layout that
# vcpkg_cmake_config_fixup(CONFIG_PATH share/tr0n) expects, then build and run
# a consumer against the prefix.
#   cmake -DSOURCE=<checkout> -DBINARY=<scratch> -DGENERATOR=Ninja -P port_equivalent.cmake
file(READ ${SOURCE}/packaging/vcpkg/ports/tr0n/portfile.cmake portfile)
string(REGEX MATCH "vcpkg_cmake_configure\\(([^)]*)\\)" _ "${portfile}")
string(REGEX MATCHALL "-D[A-Za-z0-9_]+=[A-Za-z0-9_]+" options "${CMAKE_MATCH_1}")
list(APPEND options -DTR0N_BUILD_TOOLS=OFF)  # vcpkg_check_features without the `tools` feature
message(STATUS "portfile options: ${options}")
set(prefix ${BINARY}/prefix)
file(REMOVE_RECURSE ${BINARY})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY}/build -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
                        ${options} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure with the portfile's options failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY}/build RESULT_VARIABLE rc)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY}/build --prefix ${prefix} RESULT_VARIABLE rc2)
if(NOT rc EQUAL 0 OR NOT rc2 EQUAL 0)
  message(FATAL_ERROR "build or install with the portfile's options failed")
endif()
foreach(f share/tr0n/tr0nConfig.cmake share/tr0n/tr0nConfigVersion.cmake share/tr0n/tr0nTargets.cmake
          include/tr0n.hpp include/tr0n/version.hpp)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "the port's install has no ${f}")
  endif()
endforeach()
file(GLOB_RECURSE libs ${prefix}/lib/*)
if(libs)
  message(FATAL_ERROR "a header-only install has files under lib/: ${libs}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -DMODE=find_package -DPREFIX=${prefix} -DGENERATOR=${GENERATOR}
                        -DBINARY=${BINARY}/consumer -P ${SOURCE}/tests/consumer/run_consumer.cmake RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer of the port's install failed")
endif()
