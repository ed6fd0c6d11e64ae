# Configures tr0n as a LibTorch from pip would be (the old C++ ABI, no Gloo
# headers), through the overrides the configure step offers for it, and checks
# that the report says what is off and why: distributed (no gloo/config.h),
# serve and the benchmarks (compiled against the new ABI: their link probes
# fail), with the tool, tests and examples still built.
#   cmake -DSOURCE=<tr0n> -DBINARY=<scratch> -DGENERATOR=<gen> -P configure_report.cmake
file(REMOVE_RECURSE ${BINARY})
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
          -DTR0N_TORCH_CXX11_ABI=0 -DTR0N_GLOO_INCLUDE_DIR=${BINARY}/no-gloo
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure failed (${rc})")
endif()
foreach(expected
    "old C++ ABI, _GLIBCXX_USE_CXX11_ABI=0 (set by -DTR0N_TORCH_CXX11_ABI=0)"
    "distributed (tr0n::distributed, torchrun): NO (no gloo/config.h in TR0N_GLOO_INCLUDE_DIR"
    "tool (tr0n train, sample): yes"
    "tool's serve (tr0n serve): NO (LibTorch uses the old C++ ABI and cpp-httplib"
    "benchmarks: NO (LibTorch uses the old C++ ABI and Google Benchmark was built with the new one"
    "tests: yes"
    "examples: yes")
  string(FIND "${out}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the configure report lacks: ${expected}")
  endif()
endforeach()
# What was found must not be reported as built: no serve define, no benchmark targets.
file(READ ${BINARY}/build.ninja ninja)
foreach(absent TR0N_WITH_SERVE sampler_benchmark tr0n_dist_probe)
  string(FIND "${ninja}" "${absent}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "reported off, yet the build has ${absent}")
  endif()
endforeach()
file(REMOVE_RECURSE ${BINARY})
