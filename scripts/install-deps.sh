#!/usr/bin/env bash
# Installs everything tr0n, its tests, benchmarks and examples need on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  g++ cmake ninja-build \
  libtorch-dev libopenblas0-pthread libgloo-dev \
  libboost-dev librange-v3-dev \
  catch2 libbenchmark-dev \
  zlib1g-dev libstb-dev libcli11-dev nlohmann-json3-dev \
  dataset-fashion-mnist \
  libcpp-httplib-dev chromium chromium-driver python3-selenium \
  python3-torch iproute2
