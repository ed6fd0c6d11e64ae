# For machines that provide tr0n's dependencies themselves, as Debian 12 does
# (libtorch-dev 1.13, libboost-dev 1.74, librange-v3-dev 0.12):
#   conan create packaging/conan -pr:a packaging/conan/system.profile --build=missing
include(default)

[settings]
compiler.cppstd=20

[platform_requires]
libtorch/1.13.0
boost/1.74.0
range-v3/0.12.0
