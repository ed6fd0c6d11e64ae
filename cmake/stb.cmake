# stb for the examples, the tool and the tests (never the library): its
# headers wherever they are (Debian puts them in include/stb/, vcpkg and
# Conan in include/), and its implementation from Debian's libstb when there
# is one, else compiled here from the headers.
find_path(TR0N_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
find_library(TR0N_STB_LIBRARY stb)
add_library(tr0n_stb INTERFACE)
target_include_directories(tr0n_stb SYSTEM INTERFACE ${TR0N_STB_INCLUDE_DIR})
if(TR0N_STB_LIBRARY)
  target_link_libraries(tr0n_stb INTERFACE ${TR0N_STB_LIBRARY})
else()
  add_library(tr0n_stb_impl OBJECT ${CMAKE_CURRENT_LIST_DIR}/stb_impl.cpp)
  target_include_directories(tr0n_stb_impl PRIVATE ${TR0N_STB_INCLUDE_DIR})
  target_link_libraries(tr0n_stb INTERFACE tr0n_stb_impl $<TARGET_OBJECTS:tr0n_stb_impl>)
endif()
