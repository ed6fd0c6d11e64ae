#!/usr/bin/env python3
"""Static checks of the vcpkg port and the Conan recipe, for machines without
vcpkg or Conan: the manifest parses and has its fields, the portfile calls the
helpers a header-only port needs, and the recipe imports (against a stub
`conan` package) and declares what ConanCenter expects.

    python3 packaging/check_packaging.py <project version>
"""
import importlib.util
import json
import pathlib
import re
import sys
import types

here = pathlib.Path(__file__).resolve().parent
version = sys.argv[1]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


# vcpkg
port = here / "vcpkg" / "ports" / "tr0n"
manifest = json.loads((port / "vcpkg.json").read_text())
for field in ("name", "version", "description", "homepage", "license", "dependencies", "features"):
    check(field in manifest, f"vcpkg.json: no '{field}'")
check(manifest.get("version") == version, f"vcpkg.json: version {manifest.get('version')} is not {version}")
names = {d if isinstance(d, str) else d["name"] for d in manifest.get("dependencies", [])}
for dep in ("libtorch", "boost-hana", "range-v3", "vcpkg-cmake", "vcpkg-cmake-config"):
    check(dep in names, f"vcpkg.json: no dependency '{dep}'")
tools = {d if isinstance(d, str) else d["name"] for d in manifest.get("features", {}).get("tools", {}).get("dependencies", [])}
check({"cli11", "stb"} <= tools, "vcpkg.json: feature 'tools' must add cli11 and stb")
cuda = manifest.get("features", {}).get("cuda", {}).get("dependencies", [])
check(any(isinstance(d, dict) and d.get("name") == "libtorch" and "cuda" in d.get("features", []) for d in cuda),
      "vcpkg.json: feature 'cuda' must forward to libtorch[cuda]")
portfile = (port / "portfile.cmake").read_text()
for pattern in (r"set\(VCPKG_BUILD_TYPE release\)", r"vcpkg_from_github\(", r"vcpkg_cmake_configure\(",
                r"-DTR0N_BUILD_TESTS=OFF", r"-DTR0N_BUILD_EXAMPLES=OFF", r"-DTR0N_BUILD_BENCHMARKS=OFF",
                r"vcpkg_check_features\(.*tools TR0N_BUILD_TOOLS", r"vcpkg_cmake_install\(\)",
                r"vcpkg_cmake_config_fixup\(PACKAGE_NAME tr0n CONFIG_PATH share/tr0n\)",
                r"file\(REMOVE_RECURSE", r"vcpkg_install_copyright\(", r"usage", r"TR0N_SOURCE_DIR",
                r"-DTR0N_ENABLE_DISTRIBUTED=OFF", r"-DTR0N_ENABLE_SERVE=OFF", r"--binarysource=clear"):
    check(re.search(pattern, portfile, re.S), f"portfile.cmake: no {pattern}")
check((port / "usage").exists(), "vcpkg: no usage file")
readme = (here.parent / "README.md").read_text()
check(re.search(r"TR0N_SOURCE_DIR=\$PWD vcpkg install tr0n .*--binarysource=clear", readme),
      "README: the vcpkg command for a checkout must bypass the binary cache (--binarysource=clear)")

# Conan, against a stub `conan` package that records what the recipe does.
calls = {}
conan = types.ModuleType("conan")


class ConanFile:
    pass


conan.ConanFile = ConanFile
tools = types.ModuleType("conan.tools")
build = types.ModuleType("conan.tools.build")
build.check_min_cppstd = lambda conanfile, cppstd: calls.setdefault("cppstd", cppstd)
files = types.ModuleType("conan.tools.files")
files.copy = lambda conanfile, pattern, src, dst, **kw: calls.setdefault("copy", []).append(pattern)
layout = types.ModuleType("conan.tools.layout")
layout.basic_layout = lambda conanfile, **kw: None
for module in (conan, tools, build, files, layout):
    sys.modules[module.__name__] = module

spec = importlib.util.spec_from_file_location("recipe", here / "conan" / "conanfile.py")
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)
cls = recipe.Tr0nConan
check(cls.name == "tr0n" and cls.version == version, f"conanfile.py: {cls.name}/{cls.version}, expected tr0n/{version}")
check(cls.package_type == "header-library", "conanfile.py: package_type must be header-library")
check(cls.no_copy_source is True, "conanfile.py: no_copy_source must be True")
check(cls.license == "MIT", "conanfile.py: license must be MIT, as LICENSE")


class Fake:
    def __init__(self):
        self.required = []
        self.info = types.SimpleNamespace(clear=lambda: calls.setdefault("cleared", True))
        self.properties = {}
        self.cpp_info = types.SimpleNamespace(set_property=lambda k, v: self.properties.__setitem__(k, v))
        self.source_folder = self.package_folder = "/nowhere"

    def requires(self, ref, **kw):
        self.required.append(ref)


fake = Fake()
cls.requirements(fake)
check({r.split("/")[0] for r in fake.required} == {"libtorch", "boost", "range-v3"},
      f"conanfile.py: requires {fake.required}")
cls.validate(fake)
check(calls.get("cppstd") == 20, "conanfile.py: validate() must call check_min_cppstd(self, 20)")
cls.package_id(fake)
check(calls.get("cleared"), "conanfile.py: package_id() must clear the info (header-only)")
cls.package(fake)
check("LICENSE" in calls.get("copy", []) and "*.hpp" in calls.get("copy", []), "conanfile.py: package() copies headers and LICENSE")
cls.package_info(fake)
check(fake.properties.get("cmake_file_name") == "tr0n", "conanfile.py: cmake_file_name must be tr0n")
check(fake.properties.get("cmake_target_name") == "tr0n::tr0n", "conanfile.py: cmake_target_name must be tr0n::tr0n")
check(fake.cpp_info.bindirs == [] and fake.cpp_info.libdirs == [], "conanfile.py: bindirs and libdirs must be empty")
check("boost::headers" in fake.cpp_info.requires, "conanfile.py: Boost must be limited to boost::headers")
profile = (here / "conan" / "system.profile").read_text()
check("[platform_requires]" in profile and "compiler.cppstd=20" in profile, "system.profile: platform_requires, cppstd 20")
for ref in ("libtorch/1.13", "boost/1.74", "range-v3/0.12"):
    check(ref in profile, f"system.profile: no {ref}")

for f in failures:
    print("packaging:", f)
print(f"packaging: {len(failures)} problems" if failures else "packaging: vcpkg port and Conan recipe are well-formed")
sys.exit(1 if failures else 0)
