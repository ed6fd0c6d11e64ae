"""Conan 2 recipe for tr0n, in ConanCenter's layout and conventions.

From a checkout (the recipe exports the headers and licence next to it):
    conan create packaging/conan --build=missing
On a machine that provides LibTorch, Boost and range-v3 itself (Debian 12):
    conan create packaging/conan -pr:a packaging/conan/system.profile --build=missing
"""
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0.9"


class Tr0nConan(ConanFile):
    name = "tr0n"
    version = "0.2.0"
    description = ("Header-only C++20 TR0N: turns a pre-trained unconditional generative model into a "
                   "conditional one, zero-shot, with a translator network and Langevin dynamics")
    license = "MIT"
    url = "https://github.com/conan-io/conan-center-index"
    homepage = "https://github.com/tr0n/tr0n"
    topics = ("machine-learning", "generative-models", "libtorch", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    no_copy_source = True

    def export_sources(self):
        # The recipe lives in packaging/conan/ of the source tree.
        root = os.path.join(self.recipe_folder, "..", "..")
        copy(self, "include/*", src=root, dst=self.export_sources_folder)
        copy(self, "LICENSE", src=root, dst=self.export_sources_folder)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Version ranges: ConanCenter's libtorch 2.x, Boost and range-v3, or the
        # platform's own (Debian 12: LibTorch 1.13, Boost 1.74, range-v3 0.12).
        self.requires("libtorch/[>=1.13 <3]")
        self.requires("boost/[>=1.74 <2]")
        self.requires("range-v3/[>=0.12 <1]")

    def package_id(self):
        self.info.clear()

    def validate(self):
        check_min_cppstd(self, 20)

    def source(self):
        pass  # exported with the recipe; a ConanCenter version would `get` the release archive

    def package(self):
        copy(self, "LICENSE", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", src=os.path.join(self.source_folder, "include"),
             dst=os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "tr0n")
        self.cpp_info.set_property("cmake_target_name", "tr0n::tr0n")
        self.cpp_info.requires = ["libtorch::libtorch", "boost::headers", "range-v3::range-v3"]
