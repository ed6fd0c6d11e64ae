#!/bin/sh
# Runs `conan create` with the system profile where the Conan 2 client is on
# PATH; exits 77 (skipped) elsewhere. The test_package is built from a copy in
# the scratch folder, so the source tree stays clean.
#   sh run_conan_create.sh <checkout> <scratch>
set -eu
source_dir=$1
scratch=$2
if ! command -v conan >/dev/null 2>&1; then
  echo "conan: not on PATH; skipped (the static check still runs)"
  exit 77
fi
rm -rf "$scratch"
mkdir -p "$scratch"
cp -r "$source_dir/packaging/conan/test_package" "$scratch/"
conan --version
exec conan create "$source_dir/packaging/conan" -pr:a "$source_dir/packaging/conan/system.profile" \
  --build=missing --no-remote -tf "$scratch/test_package"
