# tr0n is header-only (the `tools` feature adds one executable): a release
# configuration is all it needs.
set(VCPKG_BUILD_TYPE release)

if(DEFINED ENV{TR0N_SOURCE_DIR})
  # Testing the port: build from a local checkout instead of a release. vcpkg's
  # ABI hash sees the port's files, not the tree, so a cached package would be
  # restored after the tree changed: bypass the binary cache (README), e.g.
  #   vcpkg remove tr0n; TR0N_SOURCE_DIR=$PWD vcpkg install tr0n --overlay-ports=packaging/vcpkg/ports --binarysource=clear
  set(SOURCE_PATH "$ENV{TR0N_SOURCE_DIR}")
  message(STATUS "tr0n from the tree ${SOURCE_PATH}: install it with --binarysource=clear, "
                 "or vcpkg restores a package built from an earlier state of the tree")
else()
  vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO tr0n/tr0n
    REF "v${VERSION}"
    SHA512 0
    HEAD_REF main
  )
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    tools TR0N_BUILD_TOOLS
)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DTR0N_BUILD_TESTS=OFF
    -DTR0N_BUILD_EXAMPLES=OFF
    -DTR0N_BUILD_BENCHMARKS=OFF
    -DTR0N_INSTALL=ON
    # The tool's optional parts use libraries the port does not declare
    # (Gloo, cpp-httplib 0.11's server internals, nlohmann-json): left out.
    -DTR0N_ENABLE_DISTRIBUTED=OFF
    -DTR0N_ENABLE_SERVE=OFF
    ${FEATURE_OPTIONS}
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME tr0n CONFIG_PATH share/tr0n)

if("tools" IN_LIST FEATURES)
  vcpkg_copy_tools(TOOL_NAMES tr0n AUTO_CLEAN)
endif()

# Header-only: no libraries, and nothing under debug/.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")  # the licence goes to copyright below

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
