#pragma once
/// \file
/// tr0n's version. CMake checks at configure time, and a test checks again,
/// that these numbers equal `project(tr0n VERSION ...)`, so the two cannot drift.
#define TR0N_VERSION_MAJOR 0
#define TR0N_VERSION_MINOR 2
#define TR0N_VERSION_PATCH 0
#define TR0N_VERSION "0.2.0"
