#pragma once
/// \file
/// Moved to `<tr0n/io/tensor_file.hpp>`; this header forwards there and will go in a later release.
#include <tr0n/io/tensor_file.hpp>
