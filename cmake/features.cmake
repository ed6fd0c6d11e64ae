# What this configure builds, and why not: the LibTorch it found (version,
# C++ ABI, CUDA), and one line per optional part, printed together at the end
# (tr0n_print_features). A LibTorch from pip differs from Debian's in three
# ways that decide what can be built (README, "Using LibTorch from pip"):
# it ships no Gloo headers, it may use the old C++ ABI
# (_GLIBCXX_USE_CXX11_ABI=0), and it may be a CUDA build.

include(CheckCXXSourceCompiles)

# LibTorch's C++ ABI, as its CMake files say (TORCH_CXX_FLAGS, set on the
# torch target); TR0N_TORCH_CXX11_ABI=0|1 overrides it, to check the decisions
# below on any machine, or for a LibTorch whose files do not say.
set(TR0N_TORCH_CXX11_ABI AUTO CACHE STRING
    "LibTorch's C++ ABI: AUTO (read from its CMake files), 1 (new, std::__cxx11) or 0 (old, pre-cxx11)")
set_property(CACHE TR0N_TORCH_CXX11_ABI PROPERTY STRINGS AUTO 0 1)
function(tr0n_inspect_torch)
  set(abi 1)
  set(source "read from TORCH_CXX_FLAGS")
  get_target_property(torch_options torch INTERFACE_COMPILE_OPTIONS)
  string(JOIN " " flags "${TORCH_CXX_FLAGS}" "${torch_options}")
  if(flags MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    set(abi 0)
  elseif(NOT flags MATCHES "_GLIBCXX_USE_CXX11_ABI=1")
    set(source "LibTorch's CMake files do not say; assumed")
  endif()
  if(NOT TR0N_TORCH_CXX11_ABI STREQUAL "AUTO")
    set(abi ${TR0N_TORCH_CXX11_ABI})
    set(source "set by -DTR0N_TORCH_CXX11_ABI=${abi}")
  endif()
  if(abi)
    set(abi_text "new C++ ABI (${source})")
  else()
    set(abi_text "old C++ ABI, _GLIBCXX_USE_CXX11_ABI=0 (${source})")
  endif()
  if(TARGET c10_cuda OR TORCH_CUDA_LIBRARIES)
    set(cuda "CUDA build")
  else()
    set(cuda "CPU only")
  endif()
  set(TR0N_TORCH_ABI ${abi} PARENT_SCOPE)
  set(TR0N_TORCH_SUMMARY "LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}: ${abi_text}, ${cuda}"
      PARENT_SCOPE)
endfunction()

# Sets `result` TRUE when `source`, which uses a compiled C++ library through
# `libraries` with std::string in a signature, links under LibTorch's ABI;
# always TRUE under the new ABI (the one Debian builds every library with).
function(tr0n_links_under_torch_abi result libraries source)
  if(TR0N_TORCH_ABI)
    set(${result} TRUE PARENT_SCOPE)
    return()
  endif()
  set(CMAKE_REQUIRED_LIBRARIES ${libraries})
  set(CMAKE_REQUIRED_DEFINITIONS -D_GLIBCXX_USE_CXX11_ABI=0)
  set(CMAKE_REQUIRED_QUIET ON)
  string(MAKE_C_IDENTIFIER "TR0N_OLD_ABI_LINKS_${libraries}" probe)
  check_cxx_source_compiles("${source}" ${probe})
  if(${probe})
    set(${result} TRUE PARENT_SCOPE)
  else()
    set(${result} FALSE PARENT_SCOPE)
  endif()
endfunction()

# Records one line of the summary: `part` is built (`state` ON) or not, and why.
function(tr0n_feature part state why)
  if(state)
    set(line "  ${part}: yes")
  else()
    set(line "  ${part}: NO")
  endif()
  if(NOT why STREQUAL "")
    string(APPEND line " (${why})")
  endif()
  set_property(GLOBAL APPEND PROPERTY TR0N_FEATURE_LINES "${line}")
endfunction()

function(tr0n_print_features)
  get_property(lines GLOBAL PROPERTY TR0N_FEATURE_LINES)
  message(STATUS "tr0n ${PROJECT_VERSION}, built with ${TR0N_TORCH_SUMMARY}")
  foreach(line IN LISTS lines)
    message(STATUS "${line}")
  endforeach()
endfunction()
