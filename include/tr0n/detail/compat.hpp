#pragma once
// Private: the one place where tr0n meets differences between LibTorch
// versions. tr0n is tested with LibTorch 1.13 (Debian 12) and written for
// 2.x too; anything that differs between them is named here and used through
// these names.
//  - Optional arguments: LibTorch 1.13 takes `c10::optional`; from 2.3 on,
//    `c10::optional` is an alias of `std::optional`, and later releases
//    deprecate the `c10::` names.
#include <torch/types.h>
#include <torch/version.h>

#include <optional>

namespace tr0n::detail {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
template <class T>
using torch_optional = std::optional<T>;
inline constexpr auto torch_nullopt = std::nullopt;
#else
template <class T>
using torch_optional = c10::optional<T>;
inline constexpr auto torch_nullopt = c10::nullopt;
#endif

/// A generator argument of LibTorch's random functions.
using generator_arg = torch_optional<at::Generator>;

}  // namespace tr0n::detail
