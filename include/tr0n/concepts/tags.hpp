#pragma once
/// \file
/// Opt-in roles. A generator `z -> x` and an encoder `x -> c` are both
/// Tensor-to-Tensor callables, so a structural check alone cannot tell them
/// apart (the stdexec lesson). A type states its role with a member
/// `using tr0n_tag = tr0n::generator_tag;` (or encoder_tag, energy_tag,
/// translator_tag), or a third-party type is enrolled by specialising
/// `tr0n::enable_generator<T>` (and friends) to `true`.
#include <concepts>
#include <type_traits>

namespace tr0n {

struct generator_tag {};
struct encoder_tag {};
struct energy_tag {};
struct translator_tag {};

namespace detail {
template <class T, class Tag>
concept has_tag = requires { typename T::tr0n_tag; } && std::same_as<typename T::tr0n_tag, Tag>;
}  // namespace detail

template <class T>
inline constexpr bool enable_generator = detail::has_tag<T, generator_tag>;
template <class T>
inline constexpr bool enable_encoder = detail::has_tag<T, encoder_tag>;
template <class T>
inline constexpr bool enable_energy = detail::has_tag<T, energy_tag>;
template <class T>
inline constexpr bool enable_translator = detail::has_tag<T, translator_tag>;

}  // namespace tr0n
