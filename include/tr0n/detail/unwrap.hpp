#pragma once
// Private: lets concepts and algorithms treat a TORCH_MODULE holder and the
// module it holds alike, so `Linear` and `LinearImpl` both model a concept.
#include <torch/nn/pimpl.h>

#include <concepts>
#include <type_traits>
#include <utility>

namespace tr0n::detail {

template <class T>
concept module_holder = requires { typename T::ContainedType; } &&
    std::derived_from<T, torch::nn::ModuleHolder<typename T::ContainedType>>;

/// The object that carries the interface: `*h` for a module holder, `t` otherwise.
template <class T>
constexpr decltype(auto) unwrap(T& t) noexcept {
  if constexpr (module_holder<std::remove_const_t<T>>) {
    return *t;
  } else {
    return (t);
  }
}

template <class T>
using unwrapped_t = std::remove_cvref_t<decltype(unwrap(std::declval<std::remove_reference_t<T>&>()))>;

}  // namespace tr0n::detail
